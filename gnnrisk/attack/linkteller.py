"""LinkTeller (Wu et al., IEEE S&P 2022): the influence of one node's features on another's output reveals a tie.

Inductive protocol: the mechanism is re-run on the population with the ties that cross the
inductive split removed and labels used only on the training side; the attacker then queries
the released model about nodes of the attack side, whose ties are the private inference graph.
The API answers with the graph the mechanism released (for EdgeRand/LapGraph: the perturbed
graph, which may also hold noise ties across the split; GAP: its cached noisy aggregations).
`setting: transductive` instead queries the run's own model and graph.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.attack.context import AttackContext, inductive_sides
from gnnrisk.attack.pairs import edges_among
from gnnrisk.attack.queries import feature_influence
from gnnrisk.attack.scores import auroc
from gnnrisk.attack.targets import retrain_target
from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.privacy import TrainedModel

SETTINGS = ("inductive", "transductive")
# Density guesses as multiples of the true density k, and their metric-name suffixes.
DENSITY_GUESSES = {"k_div4": 0.25, "k_div2": 0.5, "k": 1.0, "k_x2": 2.0, "k_x4": 4.0}


def inductive_training_data(data: Data, train_side: torch.Tensor) -> Data:
    """The population with cross-split ties removed and every split mask restricted to the training side."""
    side_cpu = train_side.cpu()
    same_side = side_cpu[data.edge_index[0].cpu()] == side_cpu[data.edge_index[1].cpu()]
    out = data.edge_subgraph(same_side.to(data.edge_index.device))
    side = train_side.to(data.train_mask.device)
    for key in ("train_mask", "val_mask", "test_mask"):
        out[key] = data[key] & side
    return out


def precision_recall_at_density(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision and recall when the attacker predicts the top k_hat * #pairs pairs, for each density guess."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(labels[order])
    true_edges = int(labels.sum())
    out = {}
    for name, factor in DENSITY_GUESSES.items():
        predicted = min(max(int(round(factor * true_edges)), 1), scores.size)
        tp = int(hits[predicted - 1])
        out[f"attack_linkteller_precision_at_{name}"] = tp / predicted
        out[f"attack_linkteller_recall_at_{name}"] = tp / max(true_edges, 1)
    return out


def queried_model(ctx: AttackContext, setting: str, train_side: torch.Tensor) -> TrainedModel:
    """The released model the attacker queries: re-released on the training side, or the run's own."""
    if setting == "transductive":
        return ctx.trained
    return retrain_target(ctx.cfg.target, inductive_training_data(ctx.data, train_side), ctx.seed)


def validate(cfg: DictConfig, data: Data) -> tuple[str, float, int, int]:
    """Setting, delta, chunk and node count of `attack.linkteller`, checked against the inductive split."""
    block = cfg.linkteller
    setting = check_choice("attack.linkteller.setting", block.setting, SETTINGS)
    delta = check_number("attack.linkteller.delta", block.delta, low=0.0, low_open=True)
    chunk = int(check_number("attack.linkteller.chunk", block.chunk, low=1, integer=True))
    _, attack_side = inductive_sides(data, "linkteller")
    available = int(attack_side.sum())
    count = int(check_number("attack.linkteller.num_nodes", block.num_nodes, low=2, integer=True))
    if count > available:
        raise ConfigError("attack.linkteller.num_nodes", count,
                          f"expected at most {available} (nodes on the attack side of the inductive split)")
    return setting, delta, chunk, count


def run(ctx: AttackContext) -> dict[str, Any]:
    """Influence scores on all pairs among sampled attack-side nodes: AUROC and precision/recall at k-guesses."""
    setting, delta, chunk, count = validate(ctx.cfg, ctx.data)
    train_side, attack_side = ctx.require_inductive("linkteller")
    side_nodes = attack_side.nonzero().flatten()
    target = queried_model(ctx, setting, train_side)
    graph = target.graph
    sampled = side_nodes[torch.randperm(side_nodes.numel(), generator=ctx.generator(2))[:count]]
    queried = sampled.to(graph.x.device)
    start = time.perf_counter()
    influence = feature_influence(target.model, graph.x, graph.edge_index, queried, queried, delta, chunk)
    seconds = time.perf_counter() - start
    truth = edges_among(ctx.data.edge_index, sampled, ctx.data.num_nodes)
    iu = torch.triu_indices(count, count, offset=1)
    scores = (influence + influence.T)[iu[0], iu[1]].numpy()
    labels = truth[iu[0], iu[1]].numpy()
    out: dict[str, Any] = {"attack_linkteller_setting": setting, "attack_linkteller_nodes": count,
                           "attack_linkteller_true_edges": int(labels.sum()),
                           "attack_linkteller_pairs": int(labels.size),
                           "attack_linkteller_query_seconds": seconds,
                           "attack_linkteller_auroc": auroc(labels, scores) if 0 < labels.sum() < labels.size else None}
    out.update(precision_recall_at_density(scores, labels))
    return out
