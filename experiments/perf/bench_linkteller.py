"""Benchmark: LinkTeller's influence queries for 500 attack-side nodes, through the cached operator vs the union.

`operator`: GCN queries answered from the cached sparse operator, a chunk of stacked queries
sharing each sparse product (`FullBatchForward.with_scaled_rows`). `union`: what every other
model does, and what GCN did before: one forward pass over the disjoint union of `chunk` perturbed
copies of the graph. Timing covers the queries only (the weights do not change the cost). On a
dense released graph the union path answers about one query per pass at ~2-4 s a pass, so it is
timed on `--union-nodes` queries and its per-query time multiplied out to all of them (the cost
per query is constant); the largest difference between the two paths' influence rows is printed
relative to the largest influence.

    python experiments/perf/bench_linkteller.py                                  # default graph
    python experiments/perf/bench_linkteller.py --released edgerand --epsilon 1  # EdgeRand's released graph
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import torch
from hydra import compose, initialize_config_dir

from gnnrisk.attack import queries
from gnnrisk.attack.queries import feature_influence
from gnnrisk.data import build_dataset
from gnnrisk.models import build_model
from gnnrisk.privacy import build_mechanism

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def timed_influence(model, graph, sources, targets, chunk: int, union: bool) -> tuple[float, torch.Tensor]:
    """Seconds and influence matrix of the queries, through the union path or the cached operator."""
    plain = mock.patch.object(queries, "full_graph_forward", lambda m, x, ei: (lambda: m(x, ei)))
    with plain if union else nullcontext():
        start = time.perf_counter()
        influence = feature_influence(model, graph.x, graph.edge_index, sources, targets, 0.01, chunk)
        return time.perf_counter() - start, influence


def main() -> None:
    """Time both paths, print seconds, the speed-up, and whether they agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500, help="queried attack-side nodes")
    parser.add_argument("--graph-nodes", type=int, default=5000, help="synthetic population size")
    parser.add_argument("--released", choices=("none", "edgerand", "lapgraph"), default="none",
                        help="query the graph this mechanism releases")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--chunk", type=int, default=32, help="queries per pass")
    parser.add_argument("--union-nodes", type=int, default=None,
                        help="queries timed on the union path (default: all on the plain graph, 10 on a released one)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=[f"data.num_nodes={args.graph_nodes}", f"privacy={args.released}"]
                      + ([f"privacy.epsilon={args.epsilon}"] if args.released != "none" else []))
    graph = build_dataset(cfg.data, 0)
    if args.released != "none":
        graph, _ = build_mechanism(cfg.privacy).perturb(graph, 0)
    torch.manual_seed(0)
    model = build_model(cfg.model, graph.num_features, 2).eval()
    side = graph.ind_test_mask.nonzero().flatten()
    nodes = side[torch.randperm(side.numel(), generator=torch.Generator().manual_seed(0))[: args.nodes]]
    union_nodes = args.union_nodes or (args.nodes if args.released == "none" else 10)
    fast_s, fast = timed_influence(model, graph, nodes, nodes, args.chunk, union=False)
    union_s, union = timed_influence(model, graph, nodes[:union_nodes], nodes, args.chunk, union=True)
    union_all = union_s * args.nodes / union_nodes
    gap = float((fast[:union_nodes] - union).abs().max()) / max(float(union.abs().max()), 1e-12)
    print(f"LinkTeller influence, {args.nodes} queried x {args.nodes} targets; graph {graph.num_nodes} nodes / "
          f"{graph.num_edges} directed edges ({args.released}"
          f"{f', eps {args.epsilon:g}' if args.released != 'none' else ''}); {args.threads} thread(s); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"operator: {fast_s:.2f} s for {args.nodes} queries")
    print(f"union:    {union_s:.2f} s for {union_nodes} queries -> {union_all:.1f} s for {args.nodes}")
    print(f"speed-up {union_all / fast_s:.1f}x; largest difference of the influence rows: {gap:.1e} of the "
          f"largest influence (float32 sums in another order)")


if __name__ == "__main__":
    main()
