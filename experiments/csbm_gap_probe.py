"""Why GAP without noise gains nothing from the graph on DPDGC's cSBM: a linear probe of each of its hops.

Draws `data=csbm` at DPDGC's sizes (30,000 nodes, 2,000 features, degree 10, 750 training labels), trains
GAP's encoder as `privacy=gap_edp privacy.epsilon=inf` does (2 layers, hidden 64, dropout 0.5, batch norm,
lr 1e-3, 100 epochs, early stopping on validation loss), aggregates 2 hops without noise, then fits a
linear classifier (Adam, lr 0.01, 200 epochs, the epoch of best validation accuracy kept) on hop 0 (the
encoder's own embedding), on each hop alone, on all hops, and on hops 1-2 only. Prints test accuracy
and training accuracy at the kept epoch.

    python experiments/csbm_gap_probe.py --phi 0.5 --seed 0
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from gnnrisk.data.csbm import load_csbm
from gnnrisk.privacy.gap_model import GapEncoder, perturbed_aggregations
from gnnrisk.train.loop import fit


def probe(features: torch.Tensor, data, epochs: int = 200) -> tuple[float, float, int, float]:
    """A linear classifier on `features`: (val, test, epoch, train accuracy) at the best validation epoch."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(features.size(1), int(data.y.max()) + 1)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01)
    best = (-1.0, 0.0, 0, 0.0)
    for epoch in range(epochs):
        opt.zero_grad()
        F.cross_entropy(layer(features[data.train_mask]), data.y[data.train_mask]).backward()
        opt.step()
        with torch.no_grad():
            hit = layer(features).argmax(1) == data.y
        val, test, train = (hit[m].float().mean().item() for m in (data.val_mask, data.test_mask, data.train_mask))
        if val > best[0]:
            best = (val, test, epoch, train)
    return best


def main() -> None:
    """Train GAP's encoder on one cSBM draw and probe each aggregated hop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phi", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = OmegaConf.create({"num_nodes": 30000, "avg_degree": 10, "num_features": 2000, "phi": args.phi,
                            "epsilon": 3.25, "split": {"train": 0.025, "val": 0.025, "inductive_fraction": 0.5}})
    data = load_csbm(cfg, args.seed)
    torch.manual_seed(args.seed)
    encoder = GapEncoder(data.num_features, 64, 2, num_layers=2, dropout=0.5, batch_norm=True)
    train_cfg = OmegaConf.create({"epochs": 100, "lr": 0.001, "weight_decay": 5e-4, "patience": 50,
                                  "monitor": "val_loss", "batch_size": None, "num_neighbors": [10, 10]})
    result = fit(encoder, data, train_cfg, args.seed)
    encoder.eval()
    with torch.no_grad():
        hops = perturbed_aggregations(encoder.embed(data.x), data.edge_index, 2, 0.0)
    print(f"phi {args.phi}, seed {args.seed}: {int(data.train_mask.sum())} training labels; encoder kept "
          f"epoch {result.best_epoch} of {result.epochs}")
    print("| probe on | test acc | train acc |\n|---|---|---|")
    for name, feats in (("hop 0 (encoder)", hops[:, 0]), ("hop 1", hops[:, 1]), ("hop 2", hops[:, 2]),
                        ("hops 0-2 (GAP's input)", hops.flatten(1)), ("hops 1-2", hops[:, 1:].flatten(1))):
        _, test, _, train = probe(feats, data)
        print(f"| {name} | {test:.3f} | {train:.3f} |")


if __name__ == "__main__":
    main()
