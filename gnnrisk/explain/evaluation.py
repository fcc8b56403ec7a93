"""Scores of edge masks: AUROC and precision@k against planted causal edges, fidelity (two forms), sparsity."""

from __future__ import annotations

import math

import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.explain import Explainer, Explanation
from torch_geometric.explain.metric import characterization_score, fidelity


def soft_mask(mask: Tensor) -> Tensor:
    """Importance rescaled into [0, 1] (by its maximum) for soft masking."""
    mask = mask.detach().abs()
    top = mask.max() if mask.numel() else 0.0
    return mask / top if top > 0 else mask


def top_k_mask(mask: Tensor, candidates: Tensor, k: int) -> Tensor:
    """Boolean mask of the k highest-scoring candidate edges (ties broken by edge order)."""
    ids = candidates.nonzero().flatten()
    order = torch.sort(mask.detach()[ids], descending=True, stable=True).indices
    out = torch.zeros_like(candidates)
    out[ids[order[:min(k, ids.numel())]]] = True
    return out


def node_fidelity(explainer: Explainer, explanation: Explanation, center: int, top: Tensor) -> dict[str, float]:
    """Fidelity+/- of one explanation in the label form (PyG, soft mask) and the probability form (DIG, top-k).

    Label form (GraphFramEx, `torch_geometric.explain.metric.fidelity`): does the predicted class change
    when the soft mask's complement (fid+) or the mask itself (fid-) is applied. Probability form (DIG,
    Yuan et al.): drop in the probability of the explained class when the top-k edges are removed (fid+)
    or when only they are kept (fid-).
    """
    soft = explanation.clone()
    soft.edge_mask = soft_mask(explanation.edge_mask)
    plus_label, minus_label = fidelity(explainer, soft)
    x, edge_index = explanation.x, explanation.edge_index
    cls = explanation.target[center]
    hard = top.float()
    prob = {name: explainer.get_masked_prediction(x, edge_index, None, m)[center].softmax(-1)[cls]
            for name, m in (("full", None), ("without", 1.0 - hard), ("only", hard))}
    return {"fidelity_plus_label": plus_label, "fidelity_minus_label": minus_label,
            "fidelity_plus_prob": float(prob["full"] - prob["without"]),
            "fidelity_minus_prob": float(prob["full"] - prob["only"])}


def causal_flags(data: Data, graph: Data) -> Tensor | None:
    """Per edge of `graph` (the graph the model reads): is it a planted causal edge of `data`; None without truth.

    For a perturbed graph, an edge counts as causal when the same (source, target) pair is causal in
    the original graph; added edges are never causal, and removed causal edges cannot be scored.
    """
    truth = getattr(data, "causal_edge_mask", None)
    if truth is None:
        return None
    if graph is data or torch.equal(graph.edge_index, data.edge_index):
        return truth.bool()
    n = data.num_nodes
    causal_keys = (data.edge_index[0] * n + data.edge_index[1])[truth.bool()]
    return torch.isin(graph.edge_index[0] * n + graph.edge_index[1], causal_keys)


GROUND_TRUTHS = ("paths", "all")


def node_truth(causal: Tensor, edge_index: Tensor, num_nodes: int, center: int, num_hops: int,
               mode: str) -> Tensor:
    """Which edges explain `center`'s outcome: causal edges on a transmission path into it within K hops
    (`paths`), or every causal edge (`all`, the usual BA-Shapes convention, restricted later to the
    computation edges)."""
    if mode == "all":
        return causal
    reached = torch.zeros(num_nodes, dtype=torch.bool, device=edge_index.device)
    reached[center] = True
    truth = torch.zeros_like(causal)
    for _ in range(num_hops):
        step = causal & reached[edge_index[1]]
        truth |= step
        reached = reached.clone()
        reached[edge_index[0][step]] = True
    return truth


def per_node_auroc(table: pd.DataFrame) -> pd.Series:
    """AUROC of `score` against `causal` per `node` (Mann-Whitney on average ranks), for nodes with both classes."""
    ranks = table.groupby("node")["score"].rank(method="average")
    grouped = table.assign(rank_pos=ranks.where(table["causal"], 0.0)).groupby("node")
    pos = grouped["causal"].sum()
    neg = grouped["causal"].size() - pos
    rank_sum = grouped["rank_pos"].sum()
    auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    return auc[(pos > 0) & (neg > 0)]


def pooled_auroc(table: pd.DataFrame) -> float | None:
    """AUROC of `score` against `causal` over all (node, edge) rows together: the GNNExplainer protocol.

    Ying et al. (2019) and PyG's BA-Shapes example concatenate every explained node's edges before
    scoring, so an explainer must also rank edges consistently across nodes.
    """
    if table["causal"].nunique() < 2:
        return None
    return float(roc_auc_score(table["causal"], table["score"]))


def r_precision(table: pd.DataFrame) -> float | None:
    """Mean over nodes with ground truth of precision at k = that node's number of ground-truth edges."""
    ranked = table.sort_values(["node", "score"], ascending=[True, False], kind="stable")
    position = ranked.groupby("node").cumcount()
    relevant = ranked.groupby("node")["causal"].transform("sum")
    hits = ranked[(position < relevant) & (relevant > 0)].groupby("node")["causal"].mean()
    return float(hits.mean()) if len(hits) else None


def summarise(table: pd.DataFrame, fidelities: pd.DataFrame, has_truth: bool) -> dict[str, float | int | None]:
    """Flat metrics over all explained nodes.

    `table`: one row per (node, computation edge) with columns node, score, top (in the top-k), causal.
    `fidelities`: one row per node with the four fidelity values and `sparsity`.
    """
    out: dict[str, float | int | None] = {}
    mean = fidelities.mean()
    for key in ("fidelity_plus_label", "fidelity_minus_label", "fidelity_plus_prob", "fidelity_minus_prob",
                "sparsity"):
        out[f"explain_{key}"] = float(mean[key])
    plus, minus = out["explain_fidelity_plus_label"], out["explain_fidelity_minus_label"]
    out["explain_characterization"] = (0.0 if plus == 0 or minus == 1 else
                                       float(characterization_score(torch.tensor(plus), torch.tensor(minus))))
    out["explain_auroc"] = pooled_auroc(table) if has_truth else None
    auc = per_node_auroc(table) if has_truth else pd.Series(dtype=float)
    out["explain_auroc_node_mean"] = float(auc.mean()) if len(auc) else None
    out["explain_auroc_node_std"] = float(auc.std(ddof=1)) if len(auc) > 1 else None
    out["explain_auroc_num_nodes"] = int(len(auc))
    if has_truth:
        with_truth = table.groupby("node")["causal"].transform("any")
        top = table[table["top"] & with_truth]
        out["explain_precision_at_k"] = float(top.groupby("node")["causal"].mean().mean()) if len(top) else None
        out["explain_r_precision"] = r_precision(table)
    else:
        out["explain_precision_at_k"] = out["explain_r_precision"] = None
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
