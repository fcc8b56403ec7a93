"""Benchmark: LinkTeller's influence queries for 500 attack-side nodes on the default synthetic graph.

Compares the batched queries (`chunk` perturbed copies per forward pass) with one query per
forward pass, as a loop over queried nodes would do. Timing covers the queries only (a GCN with
the default model config; the weights do not change the cost).

    OMP_NUM_THREADS=1 nice python experiments/perf/bench_linkteller.py
    python experiments/perf/bench_linkteller.py --nodes 500 --chunks 1 8 32 64 --graph-nodes 5000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from gnnrisk.attack.queries import feature_influence
from gnnrisk.data import build_dataset
from gnnrisk.models import build_model

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def main() -> None:
    """Time the influence matrix for each chunk size and print a table with the speed-up over chunk=1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500, help="queried attack-side nodes")
    parser.add_argument("--graph-nodes", type=int, default=5000, help="synthetic population size")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 32], help="queries per forward pass")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=[f"data.num_nodes={args.graph_nodes}"])
    data = build_dataset(cfg.data, 0)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.num_features, 2).eval()
    side = data.ind_test_mask.nonzero().flatten()
    nodes = side[torch.randperm(side.numel())[: args.nodes]]
    rows, reference = [], None
    for chunk in args.chunks:
        start = time.perf_counter()
        influence = feature_influence(model, data.x, data.edge_index, nodes, nodes, 0.01, chunk)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = (seconds, influence)
        same = torch.allclose(influence, reference[1], rtol=1e-4, atol=1e-6)
        rows.append((chunk, seconds, reference[0] / seconds, same))
    print(f"LinkTeller influence, {args.nodes} nodes x {args.nodes} targets, graph {data.num_nodes} nodes / "
          f"{data.num_edges // 2} edges, torch threads {torch.get_num_threads()}")
    print(f"{'chunk':>6} {'seconds':>9} {'speed-up':>9} {'same matrix':>12}")
    for chunk, seconds, ratio, same in rows:
        print(f"{chunk:>6} {seconds:>9.2f} {ratio:>8.1f}x {str(same):>12}")


if __name__ == "__main__":
    main()
