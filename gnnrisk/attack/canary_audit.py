"""One-run model audit with edge canaries: a model-based epsilon lower bound for edge-level privacy.

Node-disjoint random non-adjacent pairs are drawn; each becomes an edge with probability 1/2,
independently; the run's mechanism is re-run on that graph; LinkTeller influence between the two
ends of every canary, queried on the released model and graph, is the attack score. The
threshold is chosen on half the canaries and the Clopper-Pearson bound is computed on the
other half. All canaries share one model, so the trials are dependent: the bound follows the
one-run auditing argument (Steinke, Nasr and Jagielski, NeurIPS 2023) rather than independent
runs, and is reported with basis "dependent".
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from gnnrisk.attack.audit_bound import audit_scores
from gnnrisk.attack.context import AttackContext
from gnnrisk.attack.pairs import pair_keys
from gnnrisk.attack.queries import feature_influence
from gnnrisk.attack.targets import retrain_target
from gnnrisk.data.rewire import with_edges
from gnnrisk.errors import ConfigError, check_number


def draw_canaries(edge_index: torch.Tensor, num_nodes: int, count: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Node-disjoint non-adjacent pairs [2, <=count] and their inclusion coins (probability 1/2)."""
    ends = torch.randperm(num_nodes, generator=generator)[: 2 * count].view(2, count)
    existing = pair_keys(edge_index[0].cpu(), edge_index[1].cpu(), num_nodes)
    ends = ends[:, ~torch.isin(pair_keys(ends[0], ends[1], num_nodes), existing)]
    include = torch.rand(ends.size(1), generator=generator) < 0.5
    return ends, include


def validate(cfg: DictConfig, data: Data) -> tuple[int, float, int]:
    """Canary count, delta and chunk of `attack.canary`; the canaries must fit the graph as disjoint pairs."""
    block, n = cfg.canary, data.num_nodes
    count = int(check_number("attack.canary.num_canaries", block.num_canaries, low=2, integer=True))
    if 2 * count > n:
        raise ConfigError("attack.canary.num_canaries", count,
                          f"expected at most {n // 2} (canaries are node-disjoint pairs among {n} nodes)")
    delta = check_number("attack.canary.delta", block.delta, low=0.0, low_open=True)
    chunk = int(check_number("attack.canary.chunk", block.chunk, low=1, integer=True))
    return count, delta, chunk


def run(ctx: AttackContext) -> dict[str, Any]:
    """Insert canaries, re-release, score them by influence, and bound epsilon on held-out canaries."""
    n = ctx.data.num_nodes
    count, delta, chunk = validate(ctx.cfg, ctx.data)
    ends, include = draw_canaries(ctx.data.edge_index, n, count, ctx.generator(7))
    added = ends[:, include].to(ctx.data.edge_index.device)
    canary_data = with_edges(ctx.data, coalesce(torch.cat([ctx.data.edge_index, added, added.flip(0)], dim=1),
                                                num_nodes=n))
    target = retrain_target(ctx.cfg.target, canary_data, ctx.seed)
    graph = target.graph
    flat = ends.flatten().to(graph.x.device)
    influence = feature_influence(target.model, graph.x, graph.edge_index, flat, flat, delta,
                                  chunk)
    m = ends.size(1)
    idx = torch.arange(m)
    scores = influence[idx, m + idx] + influence[m + idx, idx]
    result = audit_scores(scores.numpy(), include.numpy(), float(target.privacy.get("delta") or 0.0),
                          seed=ctx.seed)
    out: dict[str, Any] = result.as_metrics("attack_canary")
    out["attack_canary_eps_lower_basis"] = "dependent"
    out["attack_canary_eps_lower_trials"] = (
        f"{m} node-disjoint edge canaries inserted independently with probability 1/2 into one re-run of the "
        f"mechanism; threshold on {m // 2}, bound on {m - m // 2}; trials share one model")
    return out
