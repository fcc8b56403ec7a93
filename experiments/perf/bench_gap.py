"""Benchmark: a whole gap_edp training run vs a non-private GCN run on the same graph (target ratio <= 2).

Both runs use the shipped configs and the same `train` budget: train.epochs epochs with early stopping
switched off (patience = epochs), so each trains for the full budget; GAP additionally pre-trains its
encoder for privacy.encoder_epochs epochs and computes its K noisy hops. Timed: mechanism.train
(including GAP's noise calibration) plus predict_proba on all nodes; the graph is built once. Runs
alternate and the median of --repeats is reported, in wall-clock and in process CPU seconds (on a
shared machine the CPU time, one thread, is the steadier of the two).

    OMP_NUM_THREADS=1 nice python experiments/perf/bench_gap.py [--nodes 5000 --epochs 200 --repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from gnnrisk.data import build_dataset
from gnnrisk.privacy import build_mechanism

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")


def timed_run(cfg, data) -> tuple[float, float]:
    """(wall, CPU) seconds for one training run plus inference on every node."""
    wall, cpu = time.perf_counter(), time.process_time()
    trained = build_mechanism(cfg.privacy).train(data, cfg.model, cfg.train, int(cfg.seed))
    trained.predict_proba()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Time both runs side by side and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    common = [f"data.num_nodes={args.nodes}", f"train.epochs={args.epochs}", f"train.patience={args.epochs}"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        gcn = compose("config", overrides=common + ["model=gcn", "privacy=none"])
        gap = compose("config", overrides=common + ["model=gcn", "privacy=gap_edp",
                                                    f"privacy.epsilon={args.epsilon}"])
    data = build_dataset(gcn.data, int(gcn.seed))
    times: dict[str, list[tuple[float, float]]] = {"gcn (none)": [], f"gap_edp (eps={args.epsilon:g})": []}
    for _ in range(args.repeats):
        for (name, cfg) in zip(times, (gcn, gap)):
            times[name].append(timed_run(cfg, data))
    wall = {name: statistics.median(w for w, _ in v) for name, v in times.items()}
    cpu = {name: statistics.median(c for _, c in v) for name, v in times.items()}
    print(f"graph: {data.num_nodes} nodes, {data.num_edges // 2} undirected edges; train.epochs={args.epochs} "
          f"(no early stopping); gap encoder_epochs={gap.privacy.encoder_epochs}, hops={gap.privacy.hops}; "
          f"threads={torch.get_num_threads()}; median of {args.repeats}")
    print(f"{'run':<22}{'wall s':>9}{'cpu s':>9}   wall runs (s)")
    for name, values in times.items():
        print(f"{name:<22}{wall[name]:>9.2f}{cpu[name]:>9.2f}   {', '.join(f'{w:.2f}' for w, _ in values)}")
    (base, ours) = times
    print(f"ratio gap_edp / gcn: wall {wall[ours] / wall[base]:.2f}, cpu {cpu[ours] / cpu[base]:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
