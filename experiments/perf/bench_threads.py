"""Benchmark: one default training run with 1 thread vs all cores, on a quiet and on a busy machine.

"Busy" starts one CPU-bound process per usable core (stopped when the benchmark ends), as a
parallel sweep or another user's jobs would. Each case trains the default GCN (`fit`, seed 0) on
the default synthetic population; 1-thread and all-core runs alternate and the median of the
repeats is reported, with the thread count `threads=auto` picks (the same in both: it ignores the
load, so that a config's numbers do not depend on it; pass `threads=1` on a busy machine).

    python experiments/perf/bench_threads.py [--nodes 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from gnnrisk.data import build_dataset
from gnnrisk.models import build_model
from gnnrisk.train.loop import fit
from gnnrisk.utils.runtime import auto_threads, usable_cpus

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def burn(seconds: float) -> None:
    """Keep one core busy for at most `seconds`."""
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


def train_seconds(cfg, data, threads: int) -> float:
    """Wall seconds of one `fit` with `threads` torch threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.num_features, 2)
    start = time.perf_counter()
    fit(model, data, cfg.train, seed=0)
    return time.perf_counter() - start


def main() -> None:
    """Print median seconds for 1 thread and all cores, quiet and busy, and auto's choice in each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=[f"data.num_nodes={args.nodes}", "train.patience=1000"])
    data = build_dataset(cfg.data, 0)
    cores = usable_cpus()
    print(f"default GCN, {data.num_nodes} nodes, {cfg.train.epochs} epochs; {cores} usable cores")
    for busy in (False, True):
        burners = [mp.Process(target=burn, args=(600,), daemon=True) for _ in range(cores if busy else 0)]
        for p in burners:
            p.start()
        time.sleep(2 if busy else 0)
        times: dict[int, list[float]] = {1: [], cores: []}
        for _ in range(args.repeats):
            for threads in times:
                times[threads].append(train_seconds(cfg, data, threads))
        choice = auto_threads(1)
        for p in burners:
            p.terminate()
        one, all_ = statistics.median(times[1]), statistics.median(times[cores])
        print(f"{'busy' if busy else 'quiet'}: 1 thread {one:.2f} s, {cores} threads {all_:.2f} s "
              f"(all/1 = {all_ / one:.2f}); threads=auto picks {choice} now")


if __name__ == "__main__":
    main()
