"""The K-hop view: exact model output at the target, and the same gradient explanations as the full graph."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.nn.models import GAT, GCN, GraphSAGE
from torch_geometric.utils import barabasi_albert_graph

from gnnrisk.explain.algorithms import build_explainer
from gnnrisk.explain.subgraph import full_graph, hop_distances, node_subgraph


def test_hop_distances_on_a_path():
    # 0 - 1 - 2 - 3 - 4, undirected
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    assert hop_distances(0, 2, edge_index, 5).tolist() == [0, 1, 2, 3, 3]
    sg = node_subgraph(0, 2, edge_index, 5)
    # edges into {0, 1, 2}: 1->0, 0->1, 2->1, 1->2, 3->2; computation edges have their head within 1 hop.
    pairs = {tuple(p) for p in sg.nodes[sg.edge_index].t().tolist()}
    assert pairs == {(1, 0), (0, 1), (2, 1), (1, 2), (3, 2)}
    comp = {tuple(p) for p in sg.nodes[sg.edge_index[:, sg.computation_mask]].t().tolist()}
    assert comp == {(1, 0), (0, 1), (2, 1)}


@pytest.mark.parametrize("cls", [GCN, GraphSAGE, GAT])
def test_subgraph_output_equals_full_graph(cls):
    torch.manual_seed(0)
    edge_index = barabasi_albert_graph(300, 3)
    x = torch.randn(300, 8)
    model = cls(in_channels=8, hidden_channels=16, num_layers=2, out_channels=2).eval()
    full = model(x, edge_index)
    for node in (0, 17, 150, 299):
        sg = node_subgraph(node, 2, edge_index, 300)
        assert sg.edge_ids.numel() < edge_index.size(1)
        out = model(x[sg.nodes], sg.edge_index)[sg.center]
        torch.testing.assert_close(out, full[node], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["saliency", "integrated_gradients"])
def test_gradient_masks_agree_on_subgraph_and_full_graph(name):
    torch.manual_seed(0)
    edge_index = barabasi_albert_graph(200, 3)
    x = torch.randn(200, 8)
    model = GCN(in_channels=8, hidden_channels=16, num_layers=2, out_channels=2).eval()
    cfg = OmegaConf.create({"name": name, "n_steps": 20})
    explainer = build_explainer(cfg, model)
    for node in (5, 60):
        sub = node_subgraph(node, 2, edge_index, 200)
        whole = full_graph(node, 2, edge_index, 200)
        m_sub = explainer(x[sub.nodes], sub.edge_index, index=sub.center).edge_mask
        m_full = explainer(x, edge_index, index=node).edge_mask
        sub_ids, full_ids = sub.edge_ids[sub.computation_mask], whole.edge_ids[whole.computation_mask]
        assert torch.equal(sub_ids.sort().values, full_ids.sort().values)
        torch.testing.assert_close(m_sub[sub.computation_mask], m_full[sub_ids], rtol=1e-4, atol=1e-6)
        # and nothing outside the computation edges matters
        assert float(m_full[~whole.computation_mask].abs().max()) == 0.0
        assert float(m_sub[sub.computation_mask].abs().sum()) > 0


def test_ties_group_both_directions_and_keep_computation_ties_only():
    from gnnrisk.explain.compute import scoring_units, unit_mean
    # path 0 - 1 - 2 - 3, explained node 0, 2 hops: computation edges 1->0, 0->1, 2->1 (see above)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    sg = node_subgraph(0, 2, edge_index, 4)
    unit, reps = scoring_units(sg, undirected=True)
    pairs = sg.nodes[sg.edge_index]
    ties = {tuple(sorted(pairs[:, r].tolist())) for r in reps.tolist()}
    assert ties == {(0, 1), (1, 2)}  # tie 2-3 reaches node 0 only through 3->2, which is not a computation edge
    values = torch.arange(sg.edge_index.size(1), dtype=torch.float)
    mean = unit_mean(values, unit)
    for tie in range(int(unit.max()) + 1):
        same = unit == tie
        assert torch.allclose(mean[same], values[same].mean().expand(int(same.sum())))
    unit_d, reps_d = scoring_units(sg, undirected=False)
    assert torch.equal(unit_d, torch.arange(sg.edge_index.size(1)))
    assert torch.equal(reps_d, sg.computation_mask.nonzero().flatten())


def test_tie_truth_and_top_k_cover_both_directions():
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import DummyExplainer
    from gnnrisk.explain.compute import explain_node
    from torch_geometric.data import Data
    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    causal = torch.tensor([False, True, False, False])  # only 1 -> 0 transmits
    graph = Data(x=torch.randn(3, 4), edge_index=edge_index, num_nodes=3)
    model = GCN(in_channels=4, hidden_channels=8, num_layers=2, out_channels=2).eval()
    explainer = Explainer(model, DummyExplainer(), explanation_type="model", edge_mask_type="object",
                          model_config=dict(mode="multiclass_classification", task_level="node", return_type="raw"))
    target = model(graph.x, edge_index).argmax(-1)
    tie = explain_node(explainer, graph, 0, 2, target, top_k=1, causal=causal, undirected=True)
    assert tie.edge_ids.numel() == 2 and int(tie.truth.sum()) == 1 and int(tie.top.sum()) == 1
    directed = explain_node(explainer, graph, 0, 2, target, top_k=1, causal=causal, undirected=False)
    assert directed.edge_ids.numel() == 3 and int(directed.truth.sum()) == 1
