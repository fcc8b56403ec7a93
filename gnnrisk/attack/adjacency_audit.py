"""Audit of a released graph: does a cell present in the output reveal a tie in the input?

A trial is one node pair among sampled nodes; the guess "edge in the released graph" is scored
against the original graph. EdgeRand applies randomized response to every cell independently,
so these trials are independent and the best attack's TPR/FPR ratio is exactly e^eps: the bound
approaches the mechanism's epsilon as trials grow (the auditor's own check).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.attack.audit_bound import audit_counts
from gnnrisk.attack.context import AttackContext
from gnnrisk.attack.pairs import edges_among
from gnnrisk.errors import ConfigError, check_number

# Mechanisms whose output is a graph, and how the cells of one release relate to each other.
GRAPH_RELEASES = {
    "none": "independent",      # the released graph is the input graph itself
    "edgerand": "independent",  # randomized response on every cell separately
    "lapgraph": "dependent",    # the top-T selection couples the cells
}


def cell_counts(original: torch.Tensor, released: torch.Tensor, nodes: torch.Tensor,
                num_nodes: int) -> tuple[int, int, int, int]:
    """(TP, positives, FP, negatives) of the guess "edge in `released`" over all pairs among `nodes`."""
    truth = edges_among(original, nodes, num_nodes)
    out = edges_among(released, nodes, num_nodes)
    iu = torch.triu_indices(nodes.numel(), nodes.numel(), offset=1)
    t, o = truth[iu[0], iu[1]], out[iu[0], iu[1]]
    return int((t & o).sum()), int(t.sum()), int((~t & o).sum()), int((~t).sum())


def validate(cfg: DictConfig, data: Data) -> int:
    """The node count of `attack.adjacency`, at most the graph's nodes."""
    count = int(check_number("attack.adjacency.num_nodes", cfg.adjacency.num_nodes, low=2, integer=True))
    if count > data.num_nodes:
        raise ConfigError("attack.adjacency.num_nodes", count, f"expected at most {data.num_nodes} (the graph's nodes)")
    return count


def run(ctx: AttackContext) -> dict[str, Any]:
    """Clopper-Pearson lower bound on epsilon from the cells of the released adjacency."""
    mechanism = ctx.trained.privacy.get("mechanism") or "none"
    if mechanism not in GRAPH_RELEASES:
        # Sweeps run the same attack list against every mechanism: say why there is no number.
        return {"attack_adjacency_eps_lower": None, "attack_adjacency_eps_lower_basis": "not applicable",
                "attack_adjacency_eps_lower_trials": f"{mechanism} releases no graph (needs privacy.name in "
                                                     + ", ".join(GRAPH_RELEASES) + ")"}
    n = ctx.data.num_nodes
    count = validate(ctx.cfg, ctx.data)
    nodes = torch.randperm(n, generator=ctx.generator(6))[:count]
    result = audit_counts(*cell_counts(ctx.data.edge_index, ctx.trained.graph.edge_index, nodes, n), ctx.delta)
    out: dict[str, Any] = result.as_metrics("attack_adjacency")
    out["attack_adjacency_eps_lower_basis"] = GRAPH_RELEASES[mechanism]
    out["attack_adjacency_eps_lower_trials"] = (
        f"{count * (count - 1) // 2} node pairs among {count} random nodes of one release; guess: pair is an edge of the "
        f"released graph; {GRAPH_RELEASES[mechanism]} trials")
    return out
