"""Explanations on the city's typed links: the planted truth, the reach, exact subgraphs, a planted model, refusals."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.explain.algorithm.captum import CaptumHeteroModel, to_captum_input
from torch_geometric.nn import MessagePassing

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.explain.city import (
    Readout,
    explain_city,
    explain_fitted,
    explain_nodes,
    fit_for_explanation,
    node_subgraph,
    summarise,
)
from gnnrisk.explain.city_truth import (
    computation_edges,
    eligible_nodes,
    relation,
    true_links,
    truth_in_reach,
)
from gnnrisk.models.hetero import HETERO_MODELS, hetero_config
from gnnrisk.train.city_forecast import Record, snapshot

# A small city with strong self-excitation and a full record: many planted triggers per origin.
HOT = {"num_people": 600, "periods": 6, "people_per_place": 24,
       "crime": {"near_repeat": 0.5, "social": 0.4, "mean_delay_days": 30, "background_rate": 0.05},
       "observation": {"detection_patrolled": 1.0, "detection_unpatrolled": 1.0}}
ORIGIN = 3
TINY = {"hidden_channels": 8}
FAST = {"epochs": 3, "val_share": 0.0}


@pytest.fixture(scope="module")
def city() -> tuple[HeteroData, Record, HeteroData]:
    """The hot city, its record and its snapshot at ORIGIN."""
    data = generate_city(HOT, seed=0)
    record = Record(data)
    return data, record, snapshot(data, record, ORIGIN, 3)


def _brute_truth(data: HeteroData, record: Record, snap: HeteroData, target: str) -> dict[str, set]:
    """The true (node, edge id) pairs by plain Python over incidents and edge lists (the reference)."""
    inc = data["incident"]
    rows = {int(a): r for r, a in enumerate(record.index[record.period <= ORIGIN].tolist())}
    place = {int(a): int(p) for a, p in data["incident", "occurred_at", "place"].edge_index.T.tolist()}
    person = {int(a): int(j) for j, a in data["person", "involved_in", "incident"].edge_index.T.tolist()}
    ids = {et[1]: {tuple(e): k for k, e in enumerate(snap[et].edge_index.T.tolist())} for et in snap.edge_types}
    out: dict[str, set] = {name: set() for name in (("occurred_at", "rev_occurred_at", "adjacent") if target == "place"
                                                    else ("knows", "involved_in", "rev_involved_in"))}
    for o in range(inc.num_nodes):
        a = int(inc.parent[o])
        if int(inc.period[o]) != ORIGIN + 1 or a < 0 or a not in rows:
            continue
        s = rows[a]
        if target == "place" and int(inc.cause[o]) == 1:
            p, q = place[o], place[a]
            out["occurred_at"].add((p, ids["occurred_at"][(s, q)]))
            out["rev_occurred_at"].add((p, ids["rev_occurred_at"][(q, s)]))
            if q != p and (q, p) in ids["adjacent"]:
                out["adjacent"] |= {(p, ids["adjacent"][(q, p)]), (p, ids["adjacent"][(p, q)])}
        if target == "person" and int(inc.cause[o]) == 2:
            i, j = person[o], person[a]
            out["knows"] |= {(i, ids["knows"][(j, i)]), (i, ids["knows"][(i, j)])}
            out["involved_in"].add((i, ids["involved_in"][(j, s)]))
            out["rev_involved_in"].add((i, ids["rev_involved_in"][(s, j)]))
    return out


@pytest.mark.parametrize("target", ["place", "person"])
def test_truth_matches_brute_force(city, target: str) -> None:
    """The vectorised true links equal a plain walk over the incidents, and there are some of each kind."""
    data, record, snap = city
    links = true_links(data, record, snap, ORIGIN, target)
    brute = _brute_truth(data, record, snap, target)
    assert {name: set(map(tuple, p.T.tolist())) for name, p in links.items()} == brute
    assert all(len(v) > 0 for v in brute.values())


def _brute_reach(snap: HeteroData, target: str, node: int, hops: int) -> set[tuple[str, int]]:
    """Nodes within `hops` hops of `node` along message direction, by breadth-first search."""
    seen, frontier = {(target, node)}, {(target, node)}
    for _ in range(hops):
        frontier = {(et[0], s) for et in snap.edge_types for s, d in snap[et].edge_index.T.tolist()
                    if (et[2], d) in frontier} - seen
        seen |= frontier
    return seen


@pytest.mark.parametrize("target", ["place", "person"])
def test_computation_edges_match_bfs(city, target: str) -> None:
    """An edge is a computation edge of a node iff its destination is within L - 1 hops (BFS on two nodes)."""
    _, _, snap = city
    nodes = torch.tensor([0, 5])
    comp = computation_edges(snap, target, nodes, 2)
    for row, node in enumerate(nodes.tolist()):
        near = _brute_reach(snap, target, node, 1)
        for et in snap.edge_types:
            expect = torch.tensor([(et[2], d) in near for d in snap[et].edge_index[1].tolist()], dtype=torch.bool)
            assert torch.equal(comp[et][row], expect), et


@pytest.mark.parametrize("name", ["hetero_sage", "hetero_gat", "hetero_gcn"])
def test_subgraph_forecast_is_exact(city, name: str) -> None:
    """A node's forecast on its subgraph equals the full graph's (GCN needs its sources' other edges)."""
    _, _, snap = city
    torch.manual_seed(0)
    model = HETERO_MODELS[name](snap.metadata(), hetero_config(name, TINY), "person")
    with torch.no_grad():
        model(snap)
    readout = Readout(model, torch.tensor(0.2))
    full = readout(snap.x_dict, snap.edge_index_dict).detach()
    nodes = torch.tensor([3, 77, 400])
    comp = computation_edges(snap, "person", nodes, 2)
    for row, node in enumerate(nodes.tolist()):
        x, edges, _, local = node_subgraph(snap, "person", node, {et: c[row] for et, c in comp.items()},
                                           exact_degrees=name == "hetero_gcn")
        assert torch.allclose(readout(x, edges)[local].detach(), full[node], atol=1e-5)


def test_captum_reads_the_model_unscaled(city) -> None:
    """With all-one Captum masks the readout equals the plain forecast (PyG's hetero Captum path applies a sigmoid)."""
    _, _, snap = city
    model = HETERO_MODELS["hetero_sage"](snap.metadata(), hetero_config("hetero_sage", TINY), "place")
    with torch.no_grad():
        model(snap)
    readout = Readout(model, torch.tensor(0.0), sigmoid_masks=False)
    captum = CaptumHeteroModel(readout, "edge", torch.tensor([0]), snap.metadata())
    inputs, extra = to_captum_input(snap.x_dict, snap.edge_index_dict, "edge")
    assert torch.allclose(captum(*inputs, *extra).detach(), readout(snap.x_dict, snap.edge_index_dict)[:1].detach())


class _Planted(MessagePassing):
    """Sums 1 + the source's state over planted edges only (keys from the global ids in feature 0)."""

    def __init__(self, keys: Tensor, num_dst: int):
        super().__init__(aggr="add")
        self.keys, self.num_dst = keys, num_dst

    def forward(self, x: tuple[Tensor, Tensor], h: Tensor, edge_index: Tensor, size: tuple[int, int]) -> Tensor:
        """[N_dst, 1] sums of the planted messages."""
        key = (x[0][edge_index[0], 0] - 1).long() * self.num_dst + (x[1][edge_index[1], 0] - 1).long()
        return self.propagate(edge_index, h=h, w=torch.isin(key, self.keys).float().unsqueeze(-1), size=size)

    def message(self, h_j: Tensor, w: Tensor) -> Tensor:
        """Nothing leaves an unplanted edge."""
        return w * (1 + h_j)


class _PlantedNet(nn.Module):
    """Two layers of planted convolutions, one per relation in ModuleDicts keyed as to_hetero keys them."""

    def __init__(self, snap: HeteroData, planted: dict[tuple, Tensor]):
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleDict({"__".join(et): _Planted(planted.get(et, torch.empty(0).long()),
                                                                               snap[et[2]].num_nodes)
                                                    for et in snap.edge_types}) for _ in range(2)])

    def forward(self, x: dict[str, Tensor], edges: dict[tuple, Tensor]) -> dict[str, Tensor]:
        """Per node type: layer 1 + layer 2 sums (every mask used, untrue edges carry zeros)."""
        h = {t: v.new_zeros(v.size(0), 1) for t, v in x.items()}
        total = dict(h)
        for layer in self.layers:
            new = {t: v.new_zeros(v.size(0), 1) for t, v in x.items()}
            for et, ei in edges.items():
                size = (x[et[0]].size(0), x[et[2]].size(0))
                new[et[2]] = new[et[2]] + layer["__".join(et)]((x[et[0]], x[et[2]]), h[et[0]], ei, size)
            h = new
            total = {t: total[t] + h[t] for t in h}
        return total


@pytest.mark.parametrize("target,algorithm", [("place", "saliency"), ("person", "gnnexplainer"),
                                              ("person", "integrated_gradients")])
def test_planted_model_is_explained(city, target: str, algorithm: str) -> None:
    """A model that reads exactly a node's true edges: explanation AUROC 1, precision 1; the random mask near 0.5."""
    data, record, snap = city
    ids = snap.clone()
    for t in ids.node_types:  # features: global id + 1 (0 marks the subgraph's placeholder nodes)
        ids[t].x = torch.arange(1, ids[t].num_nodes + 1, dtype=torch.float).unsqueeze(1)
    links = true_links(data, record, snap, ORIGIN, target)
    nodes = eligible_nodes(snap, target, links, 2)[:12]
    truth = truth_in_reach(snap, target, links, nodes, computation_edges(snap, target, nodes, 2))
    tables = []
    for row, node in enumerate(nodes.tolist()):  # one planted model per node: its own true edges only
        planted = {}
        for name, flags in truth.items():
            et = relation(snap, name)
            ei = snap[et].edge_index[:, flags[row]]
            planted[et] = ei[0] * snap[et[2]].num_nodes + ei[1]
        model = nn.Module()
        model.net, model.target = _PlantedNet(snap, planted), target
        tables.append(explain_nodes(Readout(model, torch.tensor(0.0)), ids, target, torch.tensor([node]), 2, links,
                                    algorithm, epochs=30, n_steps=8, seed=row))
    metrics = summarise(pd.concat(tables, ignore_index=True), target)
    assert metrics["explain_auroc"] == pytest.approx(1.0)
    assert metrics["explain_precision_at_k"] == pytest.approx(1.0)
    assert abs(metrics["explain_random_auroc"] - 0.5) < 0.15
    assert metrics["explain_fidelity_plus"] > metrics["explain_fidelity_plus_random"]


def test_explain_city_keys_and_determinism() -> None:
    """A trained model end to end: the documented keys, counts that agree, the same answer for the same seed."""
    data = generate_city(HOT, seed=1)
    args = (data, "hetero_sage", TINY, FAST, ORIGIN, 7)
    first, table = explain_city(*args, target="place", algorithm="gnnexplainer", num_nodes=3, epochs=5)
    again, table2 = explain_city(*args, target="place", algorithm="gnnexplainer", num_nodes=3, epochs=5)
    timing = ("explain_seconds", "explain_fit_seconds")
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in again.items() if k not in timing}
    pd.testing.assert_frame_equal(table, table2)
    for key in ("explain_auroc", "explain_random_auroc", "explain_precision_at_k", "explain_fidelity_plus",
                "explain_fidelity_plus_random", "explain_auroc_occurred_at", "explain_true_edges_adjacent",
                "explain_planted_edges_occurred_at", "explain_num_nodes", "explain_eligible_nodes"):
        assert key in first
    assert first["explain_num_nodes"] == 3 and table["node"].nunique() == 3
    assert first["explain_true_edges_occurred_at"] == table[table["true"] & (table["relation"] == "occurred_at")].shape[0]
    other, _ = explain_city(data, "hetero_gat", {"hidden_channels": 8, "heads": 2}, FAST, ORIGIN, 7, target="person",
                            algorithm="saliency", num_nodes=2)
    assert other["explain_true_edges_involved_in"] == 0  # j -> trigger ends two hops from the person
    assert "explain_auroc_knows" in other


def test_one_fit_serves_several_algorithms() -> None:
    """A fitted model explained by GNNExplainer, then saliency, then GNNExplainer again (PyG's masks stay Parameters
    on a shared model, #9653): every run works and the repeat is identical."""
    data = generate_city(HOT, seed=2)
    fitted = fit_for_explanation(data, "hetero_gcn", TINY, FAST, ORIGIN, 0, target="person", num_nodes=2)
    first, _ = explain_fitted(fitted, "gnnexplainer", 0, epochs=3)
    _, table = explain_fitted(fitted, "saliency", 0)
    again, _ = explain_fitted(fitted, "gnnexplainer", 0, epochs=3)
    assert table["score"].gt(0).any()
    timing = ("explain_seconds", "explain_fit_seconds")
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in again.items() if k not in timing}


@pytest.mark.parametrize("model,cfg,kwargs,field", [
    ("hgt", {}, {}, "model.name"), ("rgcn", {}, {}, "model.name"), ("retro_hotspot", {}, {}, "model.name"),
    ("hetero_sage", {}, {"algorithm": "attention"}, "explain.name"),
    ("hetero_sage", {"num_layers": 1}, {}, "model.num_layers"),
    ("hetero_sage", {}, {"num_nodes": 0}, "explain.num_nodes"),
    ("hetero_sage", {}, {"origin": 0}, "eval.origins"),
])
def test_refusals(model: str, cfg: dict, kwargs: dict, field: str) -> None:
    """Unreadable models, unknown algorithms, one layer, bad node counts, an origin without history: one line each."""
    data = generate_city(HOT, seed=0)
    args = {"origin": ORIGIN, **kwargs}
    with pytest.raises(ConfigError) as err:
        explain_city(data, model, cfg, FAST, args.pop("origin"), 0, **args)
    assert err.value.field == field and "\n" not in str(err.value)
    if model in ("hgt", "rgcn"):
        assert "hetero_sage, hetero_gat, hetero_gcn" in str(err.value)


def test_num_nodes_is_an_upper_bound() -> None:
    """More nodes asked than have a planted link in reach: every eligible node is explained."""
    data = generate_city(HOT, seed=0)
    fitted = fit_for_explanation(data, "hetero_sage", TINY, FAST, ORIGIN, 0, num_nodes=10_000)
    assert fitted.nodes.numel() == fitted.eligible >= 1
