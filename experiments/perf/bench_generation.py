"""Benchmark: synthetic-population generation vs networkx, and the 1M-node scale target.

Targets (issue "Foundation"): at 100k nodes at least 20x faster than networkx's
`stochastic_block_model` on a comparable graph, measured side by side in this run; 1M nodes
with 10M+ directed edges in at most 30 s and 4 GB of memory on 2 cores.

    python experiments/perf/bench_generation.py            # both parts (networkx takes minutes)
    python experiments/perf/bench_generation.py --skip-networkx
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "synthetic.yaml"


def generate(num_nodes: int) -> dict:
    """Build the full synthetic population (graph, features, outcome, labels, splits) and time it."""
    from omegaconf import OmegaConf

    from gnnrisk.data import build_dataset

    cfg = OmegaConf.load(CONFIG)
    cfg.num_nodes = num_nodes
    start = time.perf_counter()
    data = build_dataset(cfg, seed=0)
    seconds = time.perf_counter() - start
    return {"nodes": num_nodes, "directed_edges": int(data.num_edges), "seconds": seconds,
            "communities": int(cfg.num_communities), "mixing": float(cfg.mixing),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def networkx_sbm(num_nodes: int, communities: int, mean_degree: float, mixing: float) -> dict:
    """networkx's SBM with the same size, communities, mean degree and share of cross-community edges."""
    import networkx as nx

    sizes = [num_nodes // communities] * communities
    s = sizes[0]
    # expected within-community edges: C * s^2/2 * p_in ; across: C(C-1)/2 * s^2 * p_out
    edges = num_nodes * mean_degree / 2
    p_in = (1 - mixing) * edges / (communities * s * (s - 1) / 2)
    p_out = mixing * edges / (communities * (communities - 1) / 2 * s * s)
    probs = np.full((communities, communities), p_out)
    np.fill_diagonal(probs, p_in)
    start = time.perf_counter()
    g = nx.stochastic_block_model(sizes, probs.tolist(), seed=0, sparse=True)
    seconds = time.perf_counter() - start
    return {"nodes": num_nodes, "directed_edges": 2 * g.number_of_edges(), "seconds": seconds}


def in_subprocess(num_nodes: int) -> dict:
    """Run one generation in a fresh process so that its peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, "--child", str(num_nodes)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, default=None)
    parser.add_argument("--skip-networkx", action="store_true")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(generate(args.child)))
        return
    ours_100k = in_subprocess(100_000)
    print(f"gnnrisk synthetic, 100k nodes: {ours_100k['seconds']:.2f} s, {ours_100k['directed_edges']:,} directed "
          f"edges (full population: graph, features, outcome, labels)")
    if not args.skip_networkx:
        nx_100k = networkx_sbm(100_000, ours_100k["communities"], 10.0, ours_100k["mixing"])
        print(f"networkx stochastic_block_model, 100k nodes: {nx_100k['seconds']:.2f} s, "
              f"{nx_100k['directed_edges']:,} directed edges (graph only)")
        print(f"speed-up at 100k: {nx_100k['seconds'] / ours_100k['seconds']:.1f}x (target >= 20x)")
    big = in_subprocess(1_000_000)
    print(f"gnnrisk synthetic, 1M nodes: {big['seconds']:.2f} s (target <= 30 s), {big['directed_edges']:,} "
          f"directed edges (target >= 10M), peak RSS {big['peak_rss_gb']:.2f} GB (target <= 4 GB)")


if __name__ == "__main__":
    main()
