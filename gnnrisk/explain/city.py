"""Explanations on the city's typed links, scored against the planted triggering links.

`explain_city` trains a heterogeneous GNN at `origin` as the forecaster does (snapshots of origins
0..origin-1, next period's recorded counts, `_fit`), then explains its forecast of period origin + 1
on the snapshot at `origin` for a seeded sample of the eligible target nodes (those with a true
triggering link in reach, `gnnrisk.explain.city_truth`, whose docstring defines the truth).

Explaining. PyG's `Explainer` (explanation_type='model', mode='regression', return_type='raw', node
mask off, edge mask 'object' on every relation) calls `Readout(x_dict, edge_index_dict)`, the model's
log forecast of the target type. One node per call: GNNExplainer's mask is one optimisation per
output (several indices would share one mask) and Captum needs one output per attribution, so the
loop over explained nodes stays. Each node is explained on its computation subgraph (edges into the
nodes within L - 1 hops), plus, for hetero_gcn, every other edge leaving a source of those edges
(BipartiteGCNConv normalises by source degrees), so its forecast equals the full graph's (tested).
A relation with no edge there gets one edge between two added featureless nodes, unreachable from
the target (PyG's hetero GNNExplainer reads `edge_index.max()` per relation).

Supported: `hetero_sage`, `hetero_gat`, `hetero_gcn` (PyG's `set_hetero_masks` finds their
per-relation convs in `to_hetero`'s ModuleDicts keyed 'src__rel__dst'). Refused: `hgt` (HGTConv keeps
per-relation parameters in ParameterDicts and runs one propagation over all relations concatenated,
so no mask reaches it and GNNExplainer stops on masks without gradient), `rgcn` (homogenises the
graph, then RGCNConv propagates per relation on slices of one edge list: no per-relation module
holds a mask), the baselines (no message passing). PyG 2.8.1's `CaptumHeteroModel` sets masks with
`apply_sigmoid=True` (its homogeneous `CaptumModel` with False), which would read the model with every
message scaled by sigmoid(1) = 0.73; `Readout` turns the sigmoid off for Captum algorithms.

Metrics (keys `explain_*`). Per explained node its computation edges are scored by |mask|. AUROC:
the mean over nodes of the node's AUROC, true edges against its other computation edges (ties
averaged), over all relations (`explain_auroc`) and within each relation holding true edges
(`explain_auroc_<rel>`, nodes with both classes there). Precision at k (`explain_precision_at_k`,
`_<rel>`): the share of true edges among the node's top k, k = its true edges (ties broken at
random). The same for two baselines: a seeded uniform mask (`explain_random_*`) and a structure-only
mask that ranks the edges into the node itself first (`explain_hop_*`; true links sit mostly one hop
out, so a high overall AUROC can come from the graph alone). Fidelity, own deletion form on the log
forecast: fid+ = mean |change| when the node's top-k edges are deleted from the graph
(`explain_fidelity_plus`), when k random computation edges are (`explain_fidelity_plus_random`), and
when its true edges are (`explain_fidelity_true`: does the model use the planted links at all).
Counts: `explain_num_nodes`, `explain_eligible_nodes`, true edges per truth relation in reach of
the explained nodes (`explain_true_edges_<rel>`) and planted over all nodes before the reach cut
(`explain_planted_edges_<rel>`); `explain_fit_seconds`, `explain_seconds` (explaining and scoring).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import CaptumExplainer, GNNExplainer
from torch_geometric.nn import MessagePassing

from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.explain.city_truth import (
    TRUTH_RELATIONS,
    EdgeType,
    computation_edges,
    eligible_nodes,
    true_links,
    truth_in_reach,
)
from gnnrisk.models.hetero import BipartiteGCNConv, hetero_config
from gnnrisk.train.city_forecast import (
    MODEL_NAMES,
    Record,
    _fit,
    _val_units,
    check_origins,
    check_target,
    snapshot,
    train_config,
)

EXPLAINABLE = ("hetero_sage", "hetero_gat", "hetero_gcn")
ALGORITHMS = ("gnnexplainer", "saliency", "integrated_gradients")
MODEL_CONFIG = {"mode": "regression", "task_level": "node", "return_type": "raw"}


class Readout(nn.Module):
    """The model as PyG's Explainer calls it: (x_dict, edge_index_dict) -> log forecast per target node."""

    def __init__(self, model: nn.Module, offset: Tensor, sigmoid_masks: bool = True):
        super().__init__()
        self.net, self.target = copy.deepcopy(model.net).eval(), model.target  # private copy (PyG #9653)
        self.register_buffer("offset", offset.detach().reshape(()))
        self.sigmoid_masks = sigmoid_masks

    def forward(self, x_dict: dict[str, Tensor], edge_index_dict: dict[EdgeType, Tensor]) -> Tensor:
        """Log expected count per target node."""
        if not self.sigmoid_masks:  # Captum's masks are the edge weights themselves
            for module in self.net.modules():
                if isinstance(module, MessagePassing) and module.explain:
                    module._apply_sigmoid = False
        return self.net(x_dict, edge_index_dict)[self.target].squeeze(-1) + self.offset


class NothingToExplain(Exception):
    """The city has no target node with a planted triggering link in reach: a property of the draw, not bad input."""


def check_explainable(model_name: str, algorithm: str, num_layers: int) -> None:
    """Refuse, in one line, an algorithm, a model or a depth whose typed-link masks cannot be read."""
    check_choice("explain.name", algorithm, ALGORITHMS)
    check_choice("model.name", model_name, MODEL_NAMES)
    if model_name not in EXPLAINABLE:
        raise ConfigError("model.name", model_name, "typed-link explanations need PyG's per-relation edge masks, "
                          "which reach only the to_hetero models: " + ", ".join(EXPLAINABLE) + " (hgt fuses the "
                          "relations in one HGTConv propagation, rgcn homogenises the graph, baselines pass no messages)")
    if num_layers < 2:
        raise ConfigError("model.num_layers", num_layers, "expected >= 2 for explanations: with one layer the "
                          "relations that cannot reach the target type leave PyG's masks without gradient")


def build_explainer(readout: Readout, algorithm: str, epochs: int, n_steps: int) -> Explainer:
    """PyG's Explainer over `readout` with edge masks on every relation."""
    if algorithm == "gnnexplainer":
        algo = GNNExplainer(epochs=epochs, lr=0.01)
    elif algorithm == "saliency":
        algo = CaptumExplainer("Saliency")
    else:
        algo = CaptumExplainer("IntegratedGradients", n_steps=n_steps)
    readout.sigmoid_masks = algorithm == "gnnexplainer"
    return Explainer(model=readout, algorithm=algo, explanation_type="model", node_mask_type=None,
                     edge_mask_type="object", model_config=MODEL_CONFIG)


def node_subgraph(snap: HeteroData, target: str, center: int, comp: dict[EdgeType, Tensor],
                  exact_degrees: bool) -> tuple[dict, dict, dict[EdgeType, Tensor], int]:
    """One node's subgraph: x_dict, edge_index_dict (relabelled), global ids of its edges, its local id."""
    keep = {}
    for et, flags in comp.items():  # relation types
        ei = snap[et].edge_index
        if exact_degrees:  # every edge leaving a source of a computation edge: the sources' degrees stay exact
            used = torch.zeros(snap[et[0]].num_nodes, dtype=torch.bool)
            used[ei[0][flags]] = True
            flags = flags | used[ei[0]]
        keep[et] = flags.nonzero().flatten()
    need = {t: torch.zeros(snap[t].num_nodes, dtype=torch.bool) for t in snap.node_types}
    need[target][center] = True
    for et, ids in keep.items():
        need[et[0]][snap[et].edge_index[0][ids]] = True
        need[et[2]][snap[et].edge_index[1][ids]] = True
    local = {t: torch.cumsum(m.long(), 0) - 1 for t, m in need.items()}
    x = {t: snap[t].x[m] for t, m in need.items()}
    edges = {}
    for et, ids in keep.items():
        ei = snap[et].edge_index[:, ids]
        edges[et] = torch.stack([local[et[0]][ei[0]], local[et[2]][ei[1]]])
        if not ids.numel():  # a placeholder edge between two added nodes no message reaches the target from
            ends = []
            for t in (et[0], et[2]):
                x[t] = torch.cat([x[t], x[t].new_zeros(1, snap[t].x.size(1))])
                ends.append(x[t].size(0) - 1)
            edges[et] = torch.tensor([[ends[0]], [ends[1]]])
    return x, edges, keep, int(local[target][center])


def _ranked(scores: Tensor, tiebreak: Tensor) -> Tensor:
    """Positions sorted by score, highest first, ties in random (tiebreak) order."""
    order = torch.argsort(tiebreak, descending=True)
    return order[torch.argsort(scores[order], descending=True, stable=True)]


def explain_nodes(readout: Readout, snap: HeteroData, target: str, nodes: Tensor, num_layers: int,
                  links: dict[str, Tensor], algorithm: str, epochs: int = 100, n_steps: int = 20,
                  seed: int = 0) -> pd.DataFrame:
    """One row per (explained node, computation edge): relation, edge id, |mask| (`score`), the baselines' scores
    (`random`, `hop`), `true`, and the node's deletion changes (`fidelity_plus`, `_random`, `fidelity_true`)."""
    comp = computation_edges(snap, target, nodes, num_layers)
    truth = truth_in_reach(snap, target, links, nodes, comp)
    exact = any(isinstance(m, BipartiteGCNConv) for m in readout.modules())
    readout = copy.deepcopy(readout)  # a mask once a Parameter stays one and breaks a later explainer (PyG #9653)
    explainer = build_explainer(readout, algorithm, epochs, n_steps)
    rng = torch.Generator().manual_seed(seed)
    parts = []
    for row, center in enumerate(nodes.tolist()):  # explained nodes: one optimisation / attribution each
        x, edges, keep, local = node_subgraph(snap, target, center, {et: c[row] for et, c in comp.items()}, exact)
        torch.manual_seed(seed * 1_000_003 + center)
        masks = explainer(x, edges, index=torch.tensor([local])).edge_mask_dict
        inside = {et: comp[et][row][ids] for et, ids in keep.items()}
        score = torch.cat([masks[et][: ids.numel()][inside[et]].detach().abs().float() for et, ids in keep.items()])
        true = torch.cat([truth[et[1]][row][ids][inside[et]] if et[1] in truth else torch.zeros(int(inside[et].sum()),
                          dtype=torch.bool) for et, ids in keep.items()])
        into = torch.cat([(snap[et].edge_index[1][ids[inside[et]]] == center) & (et[2] == target)
                          for et, ids in keep.items()])  # the structure-only baseline: edges into the node itself
        kind = torch.cat([torch.full((int(m.sum()),), t) for t, m in enumerate(inside.values())])
        slot = torch.cat([m.nonzero().flatten() for m in inside.values()])
        noise = torch.rand(score.numel(), generator=rng)
        k = int(true.sum())
        fid = {name: _deleted_change(readout, x, edges, local, kind, slot, drop) for name, drop in
               (("top", _ranked(score, noise)[:k]), ("random", _ranked(noise, noise)[:k]), ("true", true.nonzero()[:, 0]))}
        parts.append(pd.DataFrame({
            "node": center, "relation": np.array([et[1] for et in keep])[kind.numpy()],
            "edge": torch.cat([ids[inside[et]] for et, ids in keep.items()]).numpy(), "score": score.numpy(),
            "random": noise.numpy(), "hop": into.float().numpy(), "true": true.numpy(), "fidelity_plus": fid["top"],
            "fidelity_plus_random": fid["random"], "fidelity_true": fid["true"]}))
    return pd.concat(parts, ignore_index=True)


def _deleted_change(readout: Readout, x: dict, edges: dict, local: int, kind: Tensor, slot: Tensor,
                    drop: Tensor) -> float:
    """|change| of the node's log forecast when the scored edges `drop` (relation `kind`, position `slot` in
    `edges`) are deleted from its subgraph."""
    with torch.no_grad():
        full = readout(x, edges)[local]
        kept = {}
        for t, (et, ei) in enumerate(edges.items()):  # relation types, in the order of `kind`
            mask = torch.ones(ei.size(1), dtype=torch.bool)
            mask[slot[drop[kind[drop] == t]]] = False
            kept[et] = ei[:, mask]
        return float((readout(x, kept)[local] - full).abs())


def _auroc(table: pd.DataFrame, by: list[str], score: str) -> pd.Series:
    """AUROC of `score` against `true` per group (Mann-Whitney, ties averaged), for groups with both classes."""
    ranks = table.groupby(by)[score].rank(method="average")
    grouped = table.assign(pos_rank=ranks.where(table["true"], 0.0)).groupby(by)
    pos = grouped["true"].sum()
    neg = grouped["true"].size() - pos
    auc = (grouped["pos_rank"].sum() - pos * (pos + 1) / 2) / (pos * neg)
    return auc[(pos > 0) & (neg > 0)]


def _precision(table: pd.DataFrame, by: list[str], score: str) -> pd.Series:
    """Share of true edges among each group's top k (k = its true edges; ties broken by the random column)."""
    ranked = table.sort_values(by + [score, "random"], ascending=[True] * len(by) + [False, False], kind="stable")
    position = ranked.groupby(by).cumcount()
    k = ranked.groupby(by)["true"].transform("sum")
    return ranked[(position < k) & (k > 0)].groupby(by)["true"].mean()


def summarise(table: pd.DataFrame, target: str) -> dict[str, float]:
    """The `explain_*` metrics of an edge table (see the module docstring)."""
    out: dict[str, float] = {}
    for prefix, score in (("explain_", "score"), ("explain_random_", "random"), ("explain_hop_", "hop")):
        out[f"{prefix}auroc"] = float(_auroc(table, ["node"], score).mean())
        out[f"{prefix}precision_at_k"] = float(_precision(table, ["node"], score).mean())
        auc = _auroc(table, ["node", "relation"], score).groupby(level="relation").mean()
        prec = _precision(table, ["node", "relation"], score).groupby(level="relation").mean()
        for rel in auc.index:
            out[f"{prefix}auroc_{rel}"] = float(auc[rel])
            out[f"{prefix}precision_at_k_{rel}"] = float(prec[rel])
    per_node = table.groupby("node")[["fidelity_plus", "fidelity_plus_random", "fidelity_true"]].first()
    for key in per_node:
        out[f"explain_{key}"] = float(per_node[key].mean())
    counts = table[table["true"]].groupby("relation").size()
    for rel in TRUTH_RELATIONS[target]:
        out[f"explain_true_edges_{rel}"] = float(counts.get(rel, 0))
    return out


@dataclass
class Fitted:
    """A GNN trained at `origin`, its snapshot there, the planted links and the nodes to explain."""

    readout: Readout
    snap: HeteroData
    target: str
    links: dict[str, Tensor]
    nodes: Tensor
    eligible: int
    num_layers: int
    seconds: float


def fit_for_explanation(data: HeteroData, model_name: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                        origin: int, seed: int, target: str = "place", algorithm: str = "gnnexplainer",
                        num_nodes: int | None = None) -> Fitted:
    """Validate, draw at most `num_nodes` eligible target nodes (all when None), and train the model at `origin` as the
    forecaster does (refit per origin: snapshots 0..origin-1, next recorded counts, seed * 1000 + origin)."""
    start = time.perf_counter()
    cfg = hetero_config(model_name, model_cfg) if model_name in EXPLAINABLE else {}
    check_explainable(model_name, algorithm, int(cfg.get("num_layers", 2)))
    check_target(model_name, target)
    origin = check_origins([origin], int(data.num_periods), first=1)[0]
    tcfg, layers = train_config(train_cfg), int(cfg["num_layers"])
    record = Record(data)
    snaps = [snapshot(data, record, s, int(cfg["lags"])) for s in range(origin + 1)]
    links = true_links(data, record, snaps[origin], origin, target)
    eligible = eligible_nodes(snaps[origin], target, links, layers)
    if not eligible.numel():
        raise NothingToExplain(f"no {target} has a planted triggering link within {layers} hops at origin {origin} "
                               "(0 eligible nodes)")
    count = eligible.numel() if num_nodes is None else check_number("explain.num_nodes", num_nodes, low=1,
                                                                    integer=True)
    # an upper bound: how many nodes have a planted link in reach depends on the city and origin
    pick = torch.randperm(eligible.numel(), generator=torch.Generator().manual_seed(seed))[: min(int(count),
                                                                                                eligible.numel())]
    counts = record.counts(target)
    val = _val_units(data[target].num_nodes, float(tcfg["val_share"]), seed)
    torch.manual_seed(seed * 1000 + origin)  # the forecaster's seed for this origin
    model, offset, _ = _fit(model_name, cfg, tcfg, snaps[:origin], [counts[:, s + 1] for s in range(origin)],
                            val, origin, target)
    return Fitted(Readout(model, offset), snaps[origin], target, links, eligible[pick].sort().values,
                  int(eligible.numel()), layers, time.perf_counter() - start)


def explain_fitted(fitted: Fitted, algorithm: str, seed: int, epochs: int = 100,
                   n_steps: int = 20) -> tuple[dict[str, float], pd.DataFrame]:
    """Explain a fitted model's forecasts for its nodes with `algorithm` and score them: (metrics, edge table)."""
    check_choice("explain.name", algorithm, ALGORITHMS)
    check_number("explain.epochs", epochs, low=1, integer=True)
    check_number("explain.n_steps", n_steps, low=1, integer=True)
    start = time.perf_counter()
    table = explain_nodes(fitted.readout, fitted.snap, fitted.target, fitted.nodes, fitted.num_layers, fitted.links,
                          algorithm, int(epochs), int(n_steps), seed)
    metrics = summarise(table, fitted.target)
    metrics.update({"explain_num_nodes": float(fitted.nodes.numel()), "explain_eligible_nodes": float(fitted.eligible),
                    **{f"explain_planted_edges_{rel}": float(p.size(1)) for rel, p in fitted.links.items()},
                    "explain_fit_seconds": fitted.seconds, "explain_seconds": time.perf_counter() - start})
    return metrics, table


def explain_city(data: HeteroData, model_name: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                 origin: int, seed: int, target: str = "place", algorithm: str = "gnnexplainer",
                 num_nodes: int | None = None, epochs: int = 100,
                 n_steps: int = 20) -> tuple[dict[str, float], pd.DataFrame]:
    """Train `model_name` at `origin`, explain its forecast of origin + 1 for `num_nodes` eligible target nodes (all
    when None) with `algorithm`, and score the edge masks against the planted triggering links: (metrics, table)."""
    check_choice("explain.name", algorithm, ALGORITHMS)
    check_number("explain.epochs", epochs, low=1, integer=True)
    check_number("explain.n_steps", n_steps, low=1, integer=True)
    fitted = fit_for_explanation(data, model_name, model_cfg, train_cfg, origin, seed, target, algorithm, num_nodes)
    return explain_fitted(fitted, algorithm, seed, epochs, n_steps)
