"""Link stealing attack-0 (He et al., USENIX Security 2021): close posteriors suggest a tie."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.attack.context import AttackContext
from gnnrisk.attack.pairs import balanced_pairs, check_edge_count
from gnnrisk.attack.scores import auroc
from gnnrisk.errors import check_choice, check_number


def _centered_cosine(a: Tensor, b: Tensor) -> Tensor:
    """1 - cosine similarity; pairs with a zero vector get distance 1 (no evidence)."""
    sim = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return 1 - sim.nan_to_num(0.0)


def row_distances(a: Tensor, b: Tensor) -> dict[str, Tensor]:
    """The eight scipy.spatial.distance metrics of attack-0, row by row (a[i] vs b[i]), vectorised."""
    a, b = a.double(), b.double()
    d = (a - b).abs()
    return {
        "cosine": _centered_cosine(a, b),
        "euclidean": d.norm(dim=-1),
        "correlation": _centered_cosine(a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)),
        "chebyshev": d.max(-1).values,
        "braycurtis": (d.sum(-1) / (a + b).abs().sum(-1)).nan_to_num(0.0),
        "canberra": (d / (a.abs() + b.abs())).nan_to_num(0.0).sum(-1),
        "cityblock": d.sum(-1),
        "sqeuclidean": (d ** 2).sum(-1),
    }


DISTANCES = tuple(row_distances(torch.zeros(1, 2), torch.zeros(1, 2)))


def distance_aurocs(prob: Tensor, pairs: Tensor, labels: Tensor, distances: list[str]) -> dict[str, float]:
    """AUROC of each distance as an edge score (smaller distance = more likely an edge)."""
    dist = row_distances(prob[pairs[0]], prob[pairs[1]])
    y = labels.numpy()
    return {name: auroc(y, -dist[name].numpy()) for name in distances}


def validate(cfg: DictConfig, data: Data) -> tuple[list[str], int]:
    """The distances and the pair count of `attack.lsa`, checked against the graph."""
    distances = [check_choice("attack.lsa.distances", d, DISTANCES) for d in cfg.lsa.distances]
    count = int(check_number("attack.lsa.num_pairs", cfg.lsa.num_pairs, low=1, integer=True))
    check_edge_count("attack.lsa.num_pairs", count, data.edge_index)
    return distances, count


def run(ctx: AttackContext) -> dict[str, Any]:
    """Attack-0 on the released posteriors and on the mlp reference; the gap is the leakage."""
    distances, count = validate(ctx.cfg, ctx.data)
    pairs, labels = balanced_pairs(ctx.data.edge_index, ctx.data.num_nodes, count, ctx.generator(1),
                                   "attack.lsa.num_pairs")
    target = distance_aurocs(ctx.trained.predict_proba().cpu(), pairs, labels, distances)
    ref = distance_aurocs(ctx.reference().predict_proba().cpu(), pairs, labels, distances)
    best, ref_best = max(target.values()), max(ref.values())
    out: dict[str, Any] = {f"attack_lsa_auroc_{k}": v for k, v in target.items()}
    out.update({f"attack_lsa_mlp_auroc_{k}": v for k, v in ref.items()})
    out.update({"attack_lsa_auroc": best, "attack_lsa_best_distance": max(target, key=target.get),
                "attack_lsa_mlp_auroc": ref_best, "attack_lsa_gain": best - ref_best,
                "attack_lsa_pairs": int(labels.numel())})
    return out
