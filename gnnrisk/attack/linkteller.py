"""LinkTeller (Wu et al., IEEE S&P 2022): the influence of one node's features on another's output reveals a tie.

Inductive protocol: the mechanism is re-run on the population with the ties that cross the
inductive split removed and labels used only on the training side; the attacker then queries
the released model about nodes of the attack side, whose ties are the private inference graph.
The API answers with the graph the mechanism released (for EdgeRand/LapGraph: the perturbed
graph, which may also hold noise ties across the split; GAP: its cached noisy aggregations).
`setting: transductive` instead queries the run's own model and graph.

`pairs: all` scores every pair among `num_nodes` sampled attack-side nodes, by influence u->v + v->u.
`pairs: balanced` is the "balanced" sample of the LinkTeller and LPGNet code: `num_pairs` edges, each
a uniformly drawn node with a tie and a uniformly drawn neighbour of it, and `num_pairs` non-edges,
each two uniformly drawn nodes (both with replacement); a pair (u, v) is scored by the influence of
u's features on v's output. The nodes are those whose ties are attacked: the attack side of the
inductive split (`inductive`) or the whole graph (`transductive`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.attack.context import AttackContext, inductive_sides
from gnnrisk.attack.pairs import edges_among, pair_keys
from gnnrisk.attack.queries import feature_influence
from gnnrisk.attack.scores import auroc
from gnnrisk.attack.targets import retrain_target
from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.privacy import TrainedModel

SETTINGS = ("inductive", "transductive")
PAIRINGS = ("all", "balanced")
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
    """Setting, delta, chunk and node count of `attack.linkteller`, checked against the inductive split.

    Every field's type and range is checked whatever `pairs` is; the graph bounds only for the field that
    the chosen `pairs` reads (`num_nodes` for all, `num_pairs` for balanced).
    """
    block = cfg.linkteller
    setting = check_choice("attack.linkteller.setting", block.setting, SETTINGS)
    pairing, num_pairs = pairing_of(block)
    delta = check_number("attack.linkteller.delta", block.delta, low=0.0, low_open=True)
    chunk = int(check_number("attack.linkteller.chunk", block.chunk, low=1, integer=True))
    count = int(check_number("attack.linkteller.num_nodes", block.num_nodes, low=2, integer=True))
    _, attack_side = inductive_sides(data, "linkteller")
    if pairing == "all":
        available = int(attack_side.sum())
        if count > available:
            raise ConfigError("attack.linkteller.num_nodes", count,
                              f"expected at most {available} (nodes on the attack side of the inductive split)")
    else:
        pool = attack_side if setting == "inductive" else torch.ones_like(attack_side)
        ei = data.edge_index.cpu()
        ties = int((pool[ei[0]] & pool[ei[1]] & (ei[0] != ei[1])).sum())
        if num_pairs > ties:
            where = "attack-side nodes of the inductive split" if setting == "inductive" else "graph's nodes"
            raise ConfigError("attack.linkteller.num_pairs", num_pairs, f"expected at most {ties} (the directed "
                              f"ties among the {where}, which pairs=balanced draws its edges from)")
    return setting, delta, chunk, count


def pairing_of(block: DictConfig) -> tuple[str, int]:
    """`attack.linkteller.pairs` (all when absent) and `num_pairs` (edges, and as many non-edges; used by balanced)."""
    pairing = check_choice("attack.linkteller.pairs", block.get("pairs", "all"), PAIRINGS)
    if pairing == "all" and block.get("num_pairs") is None:
        return pairing, 0
    num_pairs = int(check_number("attack.linkteller.num_pairs", block.get("num_pairs"), low=1, integer=True))
    return pairing, 0 if pairing == "all" else num_pairs


def node_uniform_pairs(edge_index: torch.Tensor, pool: torch.Tensor, count: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` edges and `count` non-edges among the nodes of the boolean mask `pool`: [2, 2*count] and labels.

    An edge is a uniformly drawn pool node with a tie inside the pool and a uniformly drawn pool
    neighbour of it; a non-edge is two uniformly drawn distinct pool nodes without a tie. Both are
    drawn with replacement (LinkTeller's and LPGNet's `balanced` sample), so a low-degree node's
    ties weigh as much as a hub's.
    """
    ei = edge_index.cpu()
    ei = ei[:, pool[ei[0]] & pool[ei[1]] & (ei[0] != ei[1])]
    n = pool.numel()
    order = torch.argsort(ei[0], stable=True)
    src, dst = ei[0][order], ei[1][order]
    degree = torch.bincount(src, minlength=n)
    start = torch.cumsum(degree, 0) - degree
    with_ties = (pool & (degree > 0)).nonzero().flatten()
    if with_ties.numel() == 0:
        raise ConfigError("attack.linkteller.pairs", "balanced", "expected ties among the attacked nodes; there are none")
    u = with_ties[torch.randint(with_ties.numel(), (count,), generator=generator)]
    offset = (torch.rand(count, generator=generator, dtype=torch.float64) * degree[u]).long()
    pos = torch.stack([u, dst[start[u] + offset]])
    nodes = pool.nonzero().flatten()
    existing = pair_keys(src, dst, n)
    if nodes.numel() * (nodes.numel() - 1) // 2 <= torch.unique(existing).numel():
        raise ConfigError("attack.linkteller.pairs", "balanced", "expected non-edges among the attacked nodes; there are none")
    found = []
    while sum(k.numel() for k in found) < count:
        draw = nodes[torch.randint(nodes.numel(), (2, 2 * count + 16), generator=generator)]
        keep = (draw[0] != draw[1]) & ~torch.isin(pair_keys(draw[0], draw[1], n), existing)
        found.append(draw[:, keep])
    neg = torch.cat(found, dim=1)[:, :count]
    return torch.cat([pos, neg], dim=1), torch.cat([torch.ones(count), torch.zeros(count)]).bool()


def run_balanced(ctx: AttackContext, target: TrainedModel, pool: torch.Tensor, count: int,
                 delta: float, chunk: int) -> dict[str, Any]:
    """Directed influence u->v on `count` node-uniform edges and `count` non-edges among `pool`."""
    pairs, labels = node_uniform_pairs(ctx.data.edge_index, pool, count, ctx.generator(2))
    graph = target.graph
    sources, src_index = torch.unique(pairs[0], return_inverse=True)
    targets, dst_index = torch.unique(pairs[1], return_inverse=True)
    start = time.perf_counter()
    influence = feature_influence(target.model, graph.x, graph.edge_index, sources.to(graph.x.device),
                                  targets.to(graph.x.device), delta, chunk)
    seconds = time.perf_counter() - start
    scores = influence[src_index, dst_index].numpy()
    labels = labels.numpy()
    out: dict[str, Any] = {"attack_linkteller_nodes": int(torch.unique(pairs).numel()),
                           "attack_linkteller_true_edges": int(labels.sum()),
                           "attack_linkteller_pairs": int(labels.size),
                           "attack_linkteller_query_seconds": seconds,
                           "attack_linkteller_auroc": auroc(labels, scores)}
    out.update(precision_recall_at_density(scores, labels))
    return out


def run(ctx: AttackContext) -> dict[str, Any]:
    """Influence scores on all pairs among sampled attack-side nodes: AUROC and precision/recall at k-guesses."""
    setting, delta, chunk, count = validate(ctx.cfg, ctx.data)
    pairing, num_pairs = pairing_of(ctx.cfg.linkteller)
    train_side, attack_side = ctx.require_inductive("linkteller")
    if pairing == "balanced":
        target = queried_model(ctx, setting, train_side)
        pool = attack_side if setting == "inductive" else torch.ones_like(attack_side)
        return {"attack_linkteller_setting": setting, "attack_linkteller_pair_sampling": pairing,
                **run_balanced(ctx, target, pool, num_pairs, delta, chunk)}
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
    out: dict[str, Any] = {"attack_linkteller_setting": setting, "attack_linkteller_pair_sampling": pairing,
                           "attack_linkteller_nodes": count,
                           "attack_linkteller_true_edges": int(labels.sum()),
                           "attack_linkteller_pairs": int(labels.size),
                           "attack_linkteller_query_seconds": seconds,
                           "attack_linkteller_auroc": auroc(labels, scores) if 0 < labels.sum() < labels.size else None}
    out.update(precision_recall_at_density(scores, labels))
    return out
