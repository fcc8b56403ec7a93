"""Link-level explainers and their evaluation against planted ground truth.

`run_stage` is the pipeline's entry point: it explains a sample of nodes of the trained model with
the PyG algorithm that `explain.name` names, each on its K-hop subgraph, scores the edge masks
(AUROC and precision@k against `causal_edge_mask`, fidelity in both forms, characterization,
sparsity) and writes `explanations.npz` and `explanation.png` into the run folder. On data with periods
(`TEMPORAL_MEMBERS`) it explains the forecast by (tie, period) pairs instead: gnnrisk.explain.temporal.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.data.temporal import is_temporal
from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.explain.algorithms import (EXPLAINERS, build_explainer, check_architecture, is_plugin_explainer,
                                       message_passing_layers, plugin_explainer)
from gnnrisk.explain.compute import NodeExplanation, explain_nodes, train_pgexplainer
from gnnrisk.explain.evaluation import GROUND_TRUTHS, causal_flags, summarise
from gnnrisk.explain.nodes import select_nodes, validate_node_spec
from gnnrisk.explain.outputs import save_explanations
from gnnrisk.explain.plot import draw_explanation
from gnnrisk.explain.temporal import TEMPORAL_ALGORITHMS, run_temporal, validate_temporal
from gnnrisk.privacy.base import TrainedModel

log = logging.getLogger(__name__)

# Members that run on data with periods (gnnrisk.explain.temporal): which (tie, period) pairs drove a forecast.
TEMPORAL_MEMBERS = TEMPORAL_ALGORITHMS  # ("saliency", "integrated_gradients", "gnnexplainer", "random")


def validate(cfg: DictConfig) -> None:
    """Check the `explain` config group's fields (node choice is checked when nodes are drawn)."""
    check_choice("explain.name", cfg.name, EXPLAINERS)
    if is_plugin_explainer(cfg.name):
        plugin_explainer(cfg)  # the class and its settings, before any training
    check_choice("explain.ground_truth", cfg.get("ground_truth", "paths"), GROUND_TRUTHS)
    if cfg.get("num_hops") is not None:
        check_number("explain.num_hops", cfg.num_hops, low=1, integer=True)
    check_number("explain.top_k", cfg.get("top_k", 10), low=1, integer=True)
    if not isinstance(cfg.get("subgraph", True), bool):
        raise ConfigError("explain.subgraph", cfg.subgraph, "expected true (K-hop subgraph) or false (full graph)")
    if not isinstance(cfg.get("undirected", True), bool):
        raise ConfigError("explain.undirected", cfg.undirected,
                          "expected true (score ties: both directions together) or false (directed edges)")
    for key, low in (("epochs", 1), ("n_steps", 1), ("train_nodes", 1)):
        if key in cfg:
            check_number(f"explain.{key}", cfg[key], low=low, integer=True)
    if "lr" in cfg:
        check_number("explain.lr", cfg.lr, low=0.0, low_open=True)


def validate_stage(stage_cfg: DictConfig, data: Data, model_name: str) -> None:
    """Reject a bad `explain` config before any training, including an explainer the model cannot carry."""
    if is_temporal(data):
        validate_temporal(stage_cfg, data, model_name)
        return
    validate(stage_cfg)
    validate_node_spec(stage_cfg, data.num_nodes, int(data.y.max()) + 1)
    check_architecture(model_name, stage_cfg.name)


def edge_table(explained: list[NodeExplanation]) -> pd.DataFrame:
    """One row per (explained node, scored tie or edge): score, in top-k, causal (= explains that node)."""
    ids = torch.cat([e.edge_ids for e in explained]).cpu()
    has_truth = explained[0].truth is not None
    return pd.DataFrame({
        "node": torch.cat([torch.full_like(e.edge_ids, e.node) for e in explained]).cpu().numpy(),
        "score": torch.cat([e.mask for e in explained]).float().cpu().numpy(),
        "top": torch.cat([e.top for e in explained]).cpu().numpy(),
        "causal": (torch.cat([e.truth for e in explained]).cpu() if has_truth
                   else torch.zeros_like(ids, dtype=torch.bool)).numpy(),
    })


def run_stage(stage_cfg: DictConfig, data: Data, trained: TrainedModel, run_dir: Path, seed: int) -> dict[str, Any]:
    """Explain the configured nodes of `trained` and return the explain_* metrics; write npz + png.

    On data with periods `trained` is the run's Forecast and gnnrisk.explain.temporal explains its last
    origin's forecast by (tie, period) pairs, writing explanations.csv instead.
    """
    if is_temporal(data):
        return run_temporal(stage_cfg, data, trained, run_dir, seed)
    validate(stage_cfg)
    name = stage_cfg.name
    model, graph = trained.explainable()
    explainer = build_explainer(stage_cfg, model)
    num_hops = stage_cfg.get("num_hops") or message_passing_layers(model)
    prob = trained.predict_proba()
    pred = prob.argmax(-1)
    nodes = select_nodes(stage_cfg, graph, prob, seed)
    whole_graph = not stage_cfg.get("subgraph", True)
    top_k = int(stage_cfg.get("top_k", 10))
    torch.manual_seed(seed)
    fit_seconds = 0.0
    if name == "pgexplainer":
        pool = graph.train_mask.nonzero().flatten()
        generator = torch.Generator().manual_seed(seed)
        picks = pool[torch.randperm(pool.numel(), generator=generator)[:int(stage_cfg.train_nodes)].to(pool.device)]
        fit_seconds = train_pgexplainer(explainer, graph, picks, num_hops, pred, int(stage_cfg.epochs), whole_graph)
    causal = causal_flags(data, graph)
    start = time.perf_counter()
    undirected = bool(stage_cfg.get("undirected", True))
    explained = explain_nodes(explainer, graph, nodes, num_hops, pred, top_k, whole_graph, causal,
                              stage_cfg.get("ground_truth", "paths"), undirected)
    log.info("explain %s: %d nodes in %.1f s", name, len(explained), time.perf_counter() - start)
    table = edge_table(explained)
    fidelities = pd.DataFrame([e.fidelity for e in explained])
    metrics: dict[str, Any] = {"explain_algorithm": name, "explain_num_nodes": len(explained),
                               "explain_num_hops": int(num_hops), "explain_top_k": top_k,
                               "explain_subgraph": not whole_graph,
                               "explain_unit": "tie" if undirected else "directed_edge",
                               "explain_seconds_per_node": sum(e.seconds for e in explained) / len(explained),
                               "explain_fit_seconds": fit_seconds}
    metrics.update(summarise(table, fidelities, causal is not None))
    metrics["explain_ground_truth"] = stage_cfg.get("ground_truth", "paths") if causal is not None else None
    run_dir = Path(run_dir)
    save_explanations(run_dir / "explanations.npz", explained, graph.edge_index)
    shown = pick_shown(explained)
    edge_ids = shown.edge_ids.cpu()
    draw_explanation(run_dir / "explanation.png", shown.node, graph.edge_index[0].cpu()[edge_ids].numpy(),
                     graph.edge_index[1].cpu()[edge_ids].numpy(), shown.mask.float().cpu().numpy(),
                     None if shown.truth is None else shown.truth.cpu().numpy(),
                     f"{name} on {getattr(data, 'name', 'graph')}: node {shown.node}, {num_hops}-hop computation edges",
                     seed)
    return metrics


def pick_shown(explained: list[NodeExplanation]) -> NodeExplanation:
    """The explanation to draw: the smallest neighbourhood among those with ground-truth edges (else overall)."""
    with_truth = [e for e in explained if e.truth is not None and bool(e.truth.any())] or explained
    return min(with_truth, key=lambda e: e.edge_ids.numel())
