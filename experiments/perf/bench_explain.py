"""Benchmark: K-hop subgraph explanation vs full-graph explanation (same explainer, same nodes).

Trains a GCN on a synthetic population (default 50k nodes), then explains the same sample of
predicted-positive test nodes twice with the same PyG algorithm: on each node's K-hop subgraph
(what `explain.subgraph=true` does) and on the full graph. Prints throughput (explained nodes per
second, explanation time only), the speed-up, and the explanation AUROC of both (target: speed-up
>= 5x, AUROC within 0.02).

    OMP_NUM_THREADS=1 python experiments/perf/bench_explain.py --num-nodes 50000 --nodes 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from gnnrisk.data import build_dataset
from gnnrisk.explain import edge_table
from gnnrisk.explain.algorithms import build_explainer, message_passing_layers
from gnnrisk.explain.compute import explain_node
from gnnrisk.explain.evaluation import causal_flags, summarise
from gnnrisk.explain.nodes import select_nodes
from gnnrisk.privacy import build_mechanism
from gnnrisk.utils.runtime import seed_everything

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def main() -> None:
    """Run both modes on the same nodes and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-nodes", type=int, default=50000)
    parser.add_argument("--nodes", type=int, default=20, help="explained nodes")
    parser.add_argument("--explainer", default="gnnexplainer")
    parser.add_argument("--epochs", type=int, default=30, help="explainer optimisation epochs")
    parser.add_argument("--lr", type=float, default=None, help="explainer learning rate (default: its config)")
    parser.add_argument("--train-epochs", type=int, default=60, help="GCN training epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    overrides = [f"data.num_nodes={args.num_nodes}", f"train.epochs={args.train_epochs}",
                 f"explain={args.explainer}", f"explain.num_nodes={args.nodes}"]
    if args.explainer in ("gnnexplainer", "graphmask", "pgexplainer"):
        overrides.append(f"explain.epochs={args.epochs}")
        if args.lr is not None:
            overrides.append(f"explain.lr={args.lr}")
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    seed_everything(args.seed)
    start = time.perf_counter()
    data = build_dataset(cfg.data, args.seed)
    trained = build_mechanism(cfg.privacy).train(data, cfg.model, cfg.train, args.seed)
    print(f"data + training: {time.perf_counter() - start:.1f} s ({data.num_nodes} nodes, "
          f"{data.num_edges // 2} ties)")
    prob = trained.predict_proba()
    pred = prob.argmax(-1)
    nodes = select_nodes(cfg.explain, trained.graph, prob, args.seed)
    causal = causal_flags(data, trained.graph)
    hops = message_passing_layers(trained.model)
    # Node by node, alternating the two modes, so that a busy machine slows both alike.
    explainers = {}
    for whole_graph in (False, True):
        torch.manual_seed(args.seed)
        explainers[whole_graph] = build_explainer(cfg.explain, trained.model)
    results: dict[bool, list] = {False: [], True: []}
    for node in nodes.tolist():
        for whole_graph in (False, True):
            torch.manual_seed(args.seed + node)
            results[whole_graph].append(explain_node(explainers[whole_graph], trained.graph, node, hops, pred,
                                                     int(cfg.explain.top_k), whole_graph, causal,
                                                     cfg.explain.ground_truth))
    rows = []
    for whole_graph, explained in results.items():
        seconds = sum(e.seconds for e in explained)
        scores = summarise(edge_table(explained), pd.DataFrame([e.fidelity for e in explained]), True)
        rows.append({"mode": "full graph" if whole_graph else f"{hops}-hop subgraph", "nodes": len(explained),
                     "seconds": round(seconds, 2), "nodes_per_s": round(len(explained) / seconds, 3),
                     "auroc": scores["explain_auroc"], "auroc_node_mean": scores["explain_auroc_node_mean"],
                     "auroc_nodes": scores["explain_auroc_num_nodes"],
                     "fid+_prob": round(scores["explain_fidelity_plus_prob"], 4)})
    table = pd.DataFrame(rows).set_index("mode")
    settings = f"{cfg.explain.get('epochs', '-')} epochs, lr {cfg.explain.get('lr', '-')}"
    print(f"\n{args.explainer} ({settings}) on {data.num_nodes} nodes, GCN "
          f"{hops} layers, same {len(nodes)} predicted-positive test nodes in both modes")
    print(table.to_string())
    speedup = table["nodes_per_s"].iloc[0] / table["nodes_per_s"].iloc[1]
    gap = abs(table["auroc"].iloc[0] - table["auroc"].iloc[1]) if table["auroc"].notna().all() else float("nan")
    print(f"\nspeed-up (subgraph / full): {speedup:.1f}x (target >= 5x); AUROC gap {gap:.4f} (target <= 0.02)")


if __name__ == "__main__":
    main()
