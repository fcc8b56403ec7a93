"""Links from explanations (Olatunji et al., PETS 2023): tied nodes get similar gradient explanations.

The explanation of node v is the gradient of v's predicted-class log-probability with respect
to v's own features (a saliency map, as a feature-explanation API would release). A pair is
scored by the cosine similarity of the two explanations, on balanced edges vs random non-edges,
against the released model and against the `mlp` reference (homophily alone).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.attack.context import AttackContext
from gnnrisk.attack.pairs import balanced_pairs, check_edge_count
from gnnrisk.attack.queries import own_feature_gradients
from gnnrisk.attack.scores import roc_metrics
from gnnrisk.errors import check_number


def explanation_similarity(model: nn.Module, graph: Data, pairs: Tensor, chunk: int) -> Tensor:
    """Cosine similarity of the gradient explanations of the two nodes of every pair."""
    nodes, inverse = torch.unique(pairs, return_inverse=True)
    grads = own_feature_gradients(model, graph.x, graph.edge_index, nodes.to(graph.x.device), chunk).double()
    return torch.nn.functional.cosine_similarity(grads[inverse[0]], grads[inverse[1]], dim=-1, eps=1e-12)


def validate(cfg: DictConfig, data: Data) -> tuple[int, int]:
    """The pair count and chunk of `attack.explain_sim`, checked against the graph."""
    count = int(check_number("attack.explain_sim.num_pairs", cfg.explain_sim.num_pairs, low=1, integer=True))
    chunk = int(check_number("attack.explain_sim.chunk", cfg.explain_sim.chunk, low=1, integer=True))
    check_edge_count("attack.explain_sim.num_pairs", count, data.edge_index)
    return count, chunk


def run(ctx: AttackContext) -> dict[str, Any]:
    """AUROC (and TPR at low FPR) of explanation similarity as an edge score, with the mlp reference."""
    count, chunk = validate(ctx.cfg, ctx.data)
    pairs, labels = balanced_pairs(ctx.data.edge_index, ctx.data.num_nodes, count, ctx.generator(5),
                                   "attack.explain_sim.num_pairs")
    y = labels.numpy()
    sim = explanation_similarity(ctx.trained.model, ctx.trained.graph, pairs, chunk)
    out: dict[str, Any] = roc_metrics("attack_explain_sim", y, sim.numpy())
    ref = ctx.reference()
    ref_sim = explanation_similarity(ref.model, ref.graph, pairs, chunk)
    out.update({k.replace("attack_explain_sim", "attack_explain_sim_mlp"): v
                for k, v in roc_metrics("attack_explain_sim", y, ref_sim.numpy()).items()})
    out["attack_explain_sim_gain"] = out["attack_explain_sim_auroc"] - out["attack_explain_sim_mlp_auroc"]
    out["attack_explain_sim_pairs"] = int(y.size)
    return out
