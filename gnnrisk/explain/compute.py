"""Explaining nodes one by one on their K-hop subgraphs (or on the full graph, as a reference)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.explain import Explainer
from torch_geometric.explain.config import ExplanationType

from gnnrisk.explain.evaluation import node_fidelity, node_truth, top_k_mask
from gnnrisk.explain.subgraph import NodeSubgraph, full_graph, node_subgraph, tie_ids


@dataclass
class NodeExplanation:
    """One node's explanation over its scored units (computation ties or edges; global ids of one
    direction each), with its scores."""

    node: int
    edge_ids: Tensor
    mask: Tensor
    top: Tensor
    seconds: float
    truth: Tensor | None = None
    fidelity: dict[str, float] = field(default_factory=dict)


def view(node: int, num_hops: int, graph: Data, whole_graph: bool) -> NodeSubgraph:
    """The graph an explainer sees for `node`: its K-hop subgraph, or the whole graph."""
    make = full_graph if whole_graph else node_subgraph
    return make(node, num_hops, graph.edge_index, graph.num_nodes)


def train_pgexplainer(explainer: Explainer, graph: Data, nodes: Tensor, num_hops: int, target: Tensor,
                      epochs: int, whole_graph: bool = False) -> float:
    """Fit PGExplainer's edge MLP on `nodes` (each on its subgraph); returns seconds spent.

    PyG's PGExplainer takes one node index per step at node level, hence the loop over training nodes.
    """
    start = time.perf_counter()
    views = [view(int(v), num_hops, graph, whole_graph) for v in nodes.tolist()]
    for epoch in range(epochs):
        for sg in views:
            explainer.algorithm.train(epoch, explainer.model, graph.x[sg.nodes], sg.edge_index,
                                      target=target[sg.nodes], index=sg.center)
    return time.perf_counter() - start


def scoring_units(sg: NodeSubgraph, undirected: bool) -> tuple[Tensor, Tensor]:
    """Group the view's directed edges into scored units: (unit id per edge, one representative edge per unit).

    `undirected`: a unit is a tie (both directions of a pair, as GNNExplainer's symmetric mask),
    otherwise a directed edge. Only units with a computation direction are represented; the
    representative is that direction (the lowest edge index if both are).
    """
    e = sg.edge_index.size(1)
    unit = tie_ids(sg.edge_index, sg.nodes.numel()) if undirected else torch.arange(e, device=sg.edge_index.device)
    candidates = sg.computation_mask.nonzero().flatten()
    first = torch.full((e,), e, dtype=torch.long, device=unit.device).scatter_reduce(
        0, unit[candidates], candidates, reduce="amin")
    return unit, first[first < e]


def num_units(unit: Tensor) -> int:
    """Number of units that the unit ids 0..U-1 name."""
    return int(unit.max()) + 1 if unit.numel() else 0


def unit_mean(values: Tensor, unit: Tensor) -> Tensor:
    """Per directed edge, the mean of `values` over its unit (identity when every unit is one edge)."""
    count = torch.zeros(num_units(unit), device=values.device)
    total = count.clone().index_add_(0, unit, values.float())
    count.index_add_(0, unit, torch.ones_like(values, dtype=torch.float))
    return (total / count)[unit]


def explain_node(explainer: Explainer, graph: Data, node: int, num_hops: int, target: Tensor, top_k: int,
                 whole_graph: bool = False, causal: Tensor | None = None,
                 ground_truth: str = "paths", undirected: bool = True) -> NodeExplanation:
    """Explain one node, time it, score its fidelity on the same view of the graph, attach its ground truth.

    `causal` flags the causal edges of `graph` (None without ground truth). With `undirected`, a tie's
    importance is the mean over its two directions and the top-k, the ground truth (either direction)
    and the scores are per tie.
    """
    start = time.perf_counter()
    sg = view(node, num_hops, graph, whole_graph)
    x = graph.x[sg.nodes]
    if explainer.explanation_type == ExplanationType.phenomenon:
        explanation = explainer(x, sg.edge_index, target=target[sg.nodes], index=sg.center)
    else:
        explanation = explainer(x, sg.edge_index, index=sg.center)
    # Importance = |mask|: attribution methods (integrated gradients) return signed scores, and an edge
    # that pushes against the class still drives the prediction.
    unit, reps = scoring_units(sg, undirected)
    mask = unit_mean(explanation.edge_mask.detach().abs(), unit)
    explanation.edge_mask = mask
    seconds = time.perf_counter() - start
    rep_mask = torch.zeros_like(sg.computation_mask)
    rep_mask[reps] = True
    top_reps = top_k_mask(mask, rep_mask, top_k)
    chosen = torch.zeros(num_units(unit), dtype=torch.bool, device=unit.device)
    chosen[unit[reps]] = top_reps[reps]
    top = chosen[unit]  # both directions of a chosen tie are in the hard explanation
    scores = node_fidelity(explainer, explanation, sg.center, top)
    scores["sparsity"] = 1.0 - float(top_reps.sum()) / max(reps.numel(), 1)
    truth = None
    if causal is not None:
        edge_truth = node_truth(causal[sg.edge_ids], sg.edge_index, sg.nodes.numel(), sg.center, num_hops,
                                ground_truth)
        unit_truth = torch.zeros(num_units(unit), device=unit.device).index_add_(0, unit, edge_truth.float())
        truth = unit_truth[unit[reps]] > 0  # a tie explains the node when either direction does
    return NodeExplanation(node=node, edge_ids=sg.edge_ids[reps], mask=mask[reps], top=top_reps[reps],
                           seconds=seconds, truth=truth, fidelity=scores)


def explain_nodes(explainer: Explainer, graph: Data, nodes: Tensor, num_hops: int, target: Tensor, top_k: int,
                  whole_graph: bool = False, causal: Tensor | None = None,
                  ground_truth: str = "paths", undirected: bool = True) -> list[NodeExplanation]:
    """Explain every node in `nodes` (one explanation problem per node)."""
    return [explain_node(explainer, graph, int(v), num_hops, target, top_k, whole_graph, causal, ground_truth,
                         undirected) for v in nodes.tolist()]
