"""Benchmark: a full-batch training epoch through gnnrisk vs a minimal hand-written PyG loop.

Both train the same GCN on the same default synthetic graph for the same number of epochs,
each epoch = one Adam step on the training nodes + one evaluation on the validation nodes
(what early stopping needs). Target (issue "Foundation"): gnnrisk within 1.1x.

    python experiments/perf/bench_train_overhead.py [--nodes 5000] [--epochs 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch_geometric.nn.models import GCN

from gnnrisk.data import build_dataset
from gnnrisk.models import build_model
from gnnrisk.train.loop import fit

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def hand_loop(data, epochs: int) -> float:
    """The minimal PyG loop: train step + validation loss per epoch; returns seconds."""
    torch.manual_seed(0)
    model = GCN(data.num_features, 64, 2, out_channels=2, dropout=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(data.x, data.edge_index)[data.val_mask], data.y[data.val_mask])
    return time.perf_counter() - start


def gnnrisk_loop(data, epochs: int) -> float:
    """gnnrisk's `fit` with early stopping disabled (patience = epochs); returns seconds."""
    torch.manual_seed(0)
    model_cfg = OmegaConf.load(CONFIGS / "model" / "gcn.yaml")
    train_cfg = OmegaConf.load(CONFIGS / "train" / "default.yaml")
    train_cfg.epochs, train_cfg.patience = epochs, epochs
    model = build_model(model_cfg, data.num_features, 2)
    return fit(model, data, train_cfg, seed=0).train_seconds


def main() -> None:
    """Alternate the two loops and report the median seconds per epoch and their ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = OmegaConf.load(CONFIGS / "data" / "synthetic.yaml")
    cfg.num_nodes = args.nodes
    data = build_dataset(cfg, seed=0)
    hand, ours = [], []
    for _ in range(args.repeats):
        hand.append(hand_loop(data, args.epochs) / args.epochs)
        ours.append(gnnrisk_loop(data, args.epochs) / args.epochs)
    h, o = sorted(hand)[len(hand) // 2], sorted(ours)[len(ours) // 2]
    print(f"graph: {args.nodes} nodes, {data.num_edges} directed edges; GCN 2x64; {args.epochs} epochs x {args.repeats}")
    print(f"hand-written PyG loop : {1000 * h:8.2f} ms/epoch")
    print(f"gnnrisk fit()         : {1000 * o:8.2f} ms/epoch")
    print(f"ratio gnnrisk / hand  : {o / h:8.3f}  (target <= 1.1)")


if __name__ == "__main__":
    main()
