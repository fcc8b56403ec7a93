"""Explaining nodes one by one on their K-hop subgraphs (or on the full graph, as a reference)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.explain import Explainer
from torch_geometric.explain.config import ExplanationType

from gnnrisk.explain.evaluation import node_fidelity, node_truth, top_k_mask
from gnnrisk.explain.subgraph import NodeSubgraph, full_graph, node_subgraph


@dataclass
class NodeExplanation:
    """One node's explanation restricted to its computation edges (global ids), with its scores."""

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


def explain_node(explainer: Explainer, graph: Data, node: int, num_hops: int, target: Tensor, top_k: int,
                 whole_graph: bool = False, causal: Tensor | None = None,
                 ground_truth: str = "paths") -> NodeExplanation:
    """Explain one node, time it, score its fidelity on the same view of the graph, attach its ground truth.

    `causal` flags the causal edges of `graph` (None without ground truth).
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
    mask = explanation.edge_mask.detach().abs()
    explanation.edge_mask = mask
    seconds = time.perf_counter() - start
    top = top_k_mask(mask, sg.computation_mask, top_k)
    scores = node_fidelity(explainer, explanation, sg.center, top)
    comp = sg.computation_mask
    scores["sparsity"] = 1.0 - float(top.sum()) / max(int(comp.sum()), 1)
    truth = None
    if causal is not None:
        truth = node_truth(causal[sg.edge_ids], sg.edge_index, sg.nodes.numel(), sg.center, num_hops,
                           ground_truth)[comp]
    return NodeExplanation(node=node, edge_ids=sg.edge_ids[comp], mask=mask[comp], top=top[comp],
                           seconds=seconds, truth=truth, fidelity=scores)


def explain_nodes(explainer: Explainer, graph: Data, nodes: Tensor, num_hops: int, target: Tensor, top_k: int,
                  whole_graph: bool = False, causal: Tensor | None = None,
                  ground_truth: str = "paths") -> list[NodeExplanation]:
    """Explain every node in `nodes` (one explanation problem per node)."""
    return [explain_node(explainer, graph, int(v), num_hops, target, top_k, whole_graph, causal, ground_truth)
            for v in nodes.tolist()]
