"""Fidelity (both forms), AUROC and precision@k checked on cases whose answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import DummyExplainer
from torch_geometric.nn import MessagePassing

from gnnrisk.explain.algorithms import MODEL_CONFIG
from gnnrisk.explain.evaluation import node_fidelity, per_node_auroc, pooled_auroc, summarise, top_k_mask


class SumConv(MessagePassing):
    """h_i = sum of neighbour features (the explain mask scales each message)."""

    def __init__(self):
        super().__init__(aggr="add")

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.propagate(edge_index, x=x)


class OneHop(nn.Module):
    """Logits [0, -1 + sum_j x_j]: class 1 iff the neighbours' features sum above 1."""

    def __init__(self):
        super().__init__()
        self.conv = SumConv()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = self.conv(x, edge_index)[:, 0] - 1.0
        return torch.stack([torch.zeros_like(h), h], dim=-1)


def test_fidelity_on_hand_built_model():
    # node 0 hears +3 from node 1 and -1 from node 2: logit 1 -> class 1, p = sigmoid(1).
    x = torch.tensor([[0.0], [3.0], [-1.0]])
    edge_index = torch.tensor([[1, 2], [0, 0]])
    explainer = Explainer(OneHop(), DummyExplainer(), explanation_type="model", edge_mask_type="object",
                          model_config=MODEL_CONFIG)
    explanation = explainer(x, edge_index, index=0)
    explanation.edge_mask = torch.tensor([1.0, 0.0])  # "edge 1->0 explains it"
    top = top_k_mask(explanation.edge_mask, torch.tensor([True, True]), 1)
    assert top.tolist() == [True, False]
    got = node_fidelity(explainer, explanation, 0, top)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    # Complement keeps only -1: logit -2 -> class flips (fid+ = 1); mask keeps +3: logit 2, class kept (fid- = 0).
    assert got["fidelity_plus_label"] == 1.0
    assert got["fidelity_minus_label"] == 0.0
    assert got["fidelity_plus_prob"] == pytest.approx(sig(1) - sig(-2), abs=1e-6)
    assert got["fidelity_minus_prob"] == pytest.approx(sig(1) - sig(2), abs=1e-6)


def test_fidelity_of_the_wrong_edge():
    x = torch.tensor([[0.0], [3.0], [-1.0]])
    edge_index = torch.tensor([[1, 2], [0, 0]])
    explainer = Explainer(OneHop(), DummyExplainer(), explanation_type="model", edge_mask_type="object",
                          model_config=MODEL_CONFIG)
    explanation = explainer(x, edge_index, index=0)
    explanation.edge_mask = torch.tensor([0.0, 1.0])  # blames the edge that argues against class 1
    top = top_k_mask(explanation.edge_mask, torch.tensor([True, True]), 1)
    got = node_fidelity(explainer, explanation, 0, top)
    assert got["fidelity_plus_label"] == 0.0 and got["fidelity_minus_label"] == 1.0
    assert got["fidelity_plus_prob"] < 0 < got["fidelity_minus_prob"]


def test_characterization_and_sparsity_summary():
    table = pd.DataFrame({"node": [0, 0, 1, 1], "score": [0.9, 0.1, 0.2, 0.8], "top": [True, False, False, True],
                          "causal": [True, False, False, True]})
    fid = pd.DataFrame({"fidelity_plus_label": [1.0, 0.5], "fidelity_minus_label": [0.0, 0.5],
                        "fidelity_plus_prob": [0.2, 0.4], "fidelity_minus_prob": [0.0, 0.2], "sparsity": [0.5, 0.5]})
    out = summarise(table, fid, has_truth=True)
    # characterization = 1 / (0.5 / fid+ + 0.5 / (1 - fid-)) with fid+ = 0.75, fid- = 0.25
    assert out["explain_characterization"] == pytest.approx(0.75)
    assert out["explain_auroc"] == 1.0 and out["explain_precision_at_k"] == 1.0
    assert out["explain_sparsity"] == 0.5 and out["explain_fidelity_plus_prob"] == pytest.approx(0.3)


def test_per_node_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    node = np.repeat(np.arange(20), 30)
    score = rng.integers(0, 5, node.size).astype(float)  # many ties
    causal = rng.random(node.size) < 0.3
    causal[node == 3] = False  # a node without positives is left out
    got = per_node_auroc(pd.DataFrame({"node": node, "score": score, "causal": causal}))
    want = {v: roc_auc_score(causal[node == v], score[node == v]) for v in range(20) if v != 3}
    assert sorted(got.index) == sorted(want)
    np.testing.assert_allclose(got.sort_index().to_numpy(), [want[v] for v in sorted(want)])


def test_pooled_auroc_needs_both_classes():
    assert pooled_auroc(pd.DataFrame({"node": [0, 1], "score": [0.1, 0.2], "causal": [False, False]})) is None


def test_pooled_and_per_node_auroc_differ_when_scales_differ():
    # Each node ranks its own edges perfectly, but node 1's scores are all below node 0's.
    table = pd.DataFrame({"node": [0, 0, 1, 1], "score": [0.9, 0.8, 0.2, 0.1], "causal": [True, False, True, False]})
    assert per_node_auroc(table).mean() == 1.0
    assert pooled_auroc(table) == pytest.approx(0.75)


def test_r_precision_uses_each_nodes_truth_count():
    from gnnrisk.explain.evaluation import r_precision
    table = pd.DataFrame({"node": [0, 0, 0, 1, 1, 1, 2, 2], "score": [0.9, 0.5, 0.1, 0.9, 0.8, 0.1, 0.3, 0.2],
                          "causal": [True, False, False, False, True, True, False, False]})
    # node 0: 1 true edge, ranked first -> 1; node 1: 2 true edges, top 2 hold one -> 0.5; node 2 has none.
    assert r_precision(table) == pytest.approx(0.75)
