"""Benchmark: one dpsgd_node training step vs one non-private step of the same model and batch (target <= 3x).

Both steps train the same PyG GraphSAGE (configs/model/sage.yaml sizes) on the same batch of root
nodes of the degree-bounded default synthetic graph, with Adam:
- non-private (PyG): PyG forward on the batch's K-hop subgraph (`k_hop_subgraph`), mean loss, backward, step;
- non-private (trees): the same padded K-hop trees the DP step uses, batched forward, mean loss,
  ordinary backward, step: isolates the cost of per-example gradients + clipping + noise;
- dpsgd_node: `dpsgd_node.dp_step`: gather the padded K-hop trees, per-example gradients with
  one batched backward (output-gradient x input per tree position), clip, sum, add Gaussian noise, step.
Timings alternate between the two and report the median over --repeats steps (after warm-up).

    OMP_NUM_THREADS=1 nice python experiments/perf/bench_dpsgd_node.py [--nodes 5000 --batch 256 --repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torch_geometric.utils import k_hop_subgraph

from gnnrisk.data import build_dataset
from gnnrisk.models import build_model
from gnnrisk.privacy.dpsgd_node import bound_degree, dp_step, gather_trees, neighbour_table, sage_tree_forward

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
TARGET_RATIO = 3.0


def nonprivate_step(model, optimizer, x, y, edge_index, roots, hops: int) -> None:
    """An ordinary mini-batch step: PyG on the roots' K-hop subgraph."""
    model.train()
    subset, sub_edges, mapping, _ = k_hop_subgraph(roots, hops, edge_index, relabel_nodes=True,
                                                   num_nodes=x.size(0))
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x[subset], sub_edges)[mapping], y[roots])
    loss.backward()
    optimizer.step()


def tree_step(model, optimizer, x, y, nbr, mask, roots, hops: int, dropout: float, aggr: str) -> None:
    """A non-private step on the same padded trees as the DP step (one batched backward)."""
    model.train()
    ids, masks = gather_trees(roots, nbr, mask, hops)
    optimizer.zero_grad()
    params = dict(model.named_parameters())
    logits = sage_tree_forward(params, [x[i] for i in ids], masks, hops, dropout, training=True, aggr=aggr)
    F.cross_entropy(logits, y[roots]).backward()
    optimizer.step()


def bench(data, hops: int, degree: int, batch: int, repeats: int) -> tuple[float, float, float]:
    """Median seconds of the two non-private steps and the DP step on the same model and batches."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["model=sage", f"model.num_layers={hops}"])
    edges = bound_degree(data.edge_index, data.num_nodes, degree, seed=0)
    graph = data.clone()
    graph.edge_index = edges
    nbr, mask = neighbour_table(edges, data.num_nodes, degree)
    model = build_model(cfg.model, data.num_features, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train_idx = data.train_mask.nonzero().flatten()
    gen = torch.Generator().manual_seed(0)
    dropout, aggr = float(cfg.model.dropout), cfg.model.aggr
    plain, trees, private = [], [], []
    for i in range(repeats + 3):
        roots = train_idx[torch.randperm(train_idx.numel(), generator=gen)[:batch]]
        t0 = time.perf_counter()
        nonprivate_step(model, optimizer, graph.x, graph.y, edges, roots, hops)
        t1 = time.perf_counter()
        tree_step(model, optimizer, graph.x, graph.y, nbr, mask, roots, hops, dropout, aggr)
        t2 = time.perf_counter()
        dp_step(model, optimizer, graph, roots, nbr, mask, hops, dropout, 1.0, 5.0, gen, aggr=aggr)
        t3 = time.perf_counter()
        if i >= 3:
            plain.append(t1 - t0)
            trees.append(t2 - t1)
            private.append(t3 - t2)
    return statistics.median(plain), statistics.median(trees), statistics.median(private)


def main() -> None:
    """Print the table of step times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"data.num_nodes={args.nodes}", "model=sage"])
    data = build_dataset(cfg.data, seed=0)
    print(f"synthetic graph: {data.num_nodes} nodes, {data.num_edges // 2} edges; batch {args.batch}; "
          f"GraphSAGE hidden {cfg.model.hidden_channels} aggr {cfg.model.aggr}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'K':>2} {'D':>3} {'non-private PyG ms':>19} {'non-private trees ms':>21} {'dpsgd_node ms':>14} "
          f"{'ratio vs PyG':>13} {'ratio vs trees':>15}  (target <= {TARGET_RATIO:g})")
    for hops, degree in ((1, 5), (2, 5), (2, 10)):
        plain, trees, private = bench(data, hops, degree, args.batch, args.repeats)
        worst = max(private / plain, private / trees)
        print(f"{hops:>2} {degree:>3} {plain * 1e3:>19.2f} {trees * 1e3:>21.2f} {private * 1e3:>14.2f} "
              f"{private / plain:>13.2f} {private / trees:>15.2f}  {'ok' if worst <= TARGET_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
