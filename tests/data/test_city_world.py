"""The city: its heterogeneous contract, determinism, shuffled ids, the truth it keeps, the record, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import HeteroData

from gnnrisk.data.city import RELATIONS, generate_city
from gnnrisk.data.city import incidents as ic
from gnnrisk.data.city import places as pl
from gnnrisk.errors import ConfigError

SMALL = {"num_people": 3000, "periods": 6}


@pytest.fixture(scope="module")
def city() -> HeteroData:
    """A small default city."""
    return generate_city(SMALL, seed=0)


def _target(data: HeteroData, rel: tuple[str, str, str]) -> torch.Tensor:
    """For a relation with exactly one edge per source node: the target of each source node."""
    ei = data[rel].edge_index
    out = torch.full((data[rel[0]].num_nodes,), -1, dtype=torch.long)
    out[ei[0]] = ei[1]
    return out


def _counts(data: HeteroData, node_of_incident: torch.Tensor, num: int) -> torch.Tensor:
    """Incidents per (node, period) [num, K]."""
    k = data.num_periods
    return torch.bincount(node_of_incident * k + data["incident"].period, minlength=num * k).reshape(num, k)


def test_contract(city: HeteroData) -> None:
    """Node types, relations and their reverses, one place and one person per incident, one home per person."""
    assert set(city.node_types) == {"person", "place", "incident"}
    for src, rel, dst in RELATIONS:
        ei = city[src, rel, dst].edge_index
        assert ei.dtype == torch.long and ei.min() >= 0
        assert int(ei[0].max()) < city[src].num_nodes and int(ei[1].max()) < city[dst].num_nodes
        if src != dst:  # the reverse holds the same pairs, flipped
            rev = city[dst, f"rev_{rel}", src].edge_index
            num = city[dst].num_nodes
            assert torch.equal((ei[0] * num + ei[1]).sort().values, (rev[1] * num + rev[0]).sort().values)
    n, p, m = city["person"].num_nodes, city["place"].num_nodes, city["incident"].num_nodes
    assert n == 3000 and p == 8 * 8 and m > 100
    assert city["person"].x.shape == (n, 16) and city["person"].rate.shape == (n, 6)
    assert city["place"].rate.shape == (p, 6) and city["place"].pos.shape == (p, 2)
    for rel in (("incident", "occurred_at", "place"), ("person", "lives_at", "place")):
        assert torch.equal(torch.bincount(city[rel].edge_index[0], minlength=city[rel[0]].num_nodes),
                           torch.ones(city[rel[0]].num_nodes, dtype=torch.long))
    involved = city["person", "involved_in", "incident"].edge_index
    assert torch.equal(torch.bincount(involved[1], minlength=m), torch.ones(m, dtype=torch.long))
    knows = city["person", "knows", "person"].edge_index
    assert torch.equal(knows, torch.stack([knows[1], knows[0]])[:, np.lexsort((knows[0], knows[1]))])
    assert torch.equal(knows, knows[:, np.lexsort((knows[1], knows[0]))])  # sorted by source, then target
    adj = city["place", "adjacent", "place"].edge_index
    assert adj.shape[1] == 2 * 2 * 8 * 7  # rook adjacency on an 8 x 8 grid, both directions
    dist = (city["place"].pos[adj[0]] - city["place"].pos[adj[1]]).abs().sum(dim=1)
    assert bool((dist == 1).all())


def test_reverse_relations_are_what_to_undirected_builds(city: HeteroData) -> None:
    """Dropping the rev_ relations and applying ToUndirected gives them back, edge for edge."""
    forward = HeteroData()
    for t in city.node_types:
        forward[t].num_nodes = city[t].num_nodes
    for rel in RELATIONS:
        forward[rel].edge_index = city[rel].edge_index
    rebuilt = T.ToUndirected()(forward)
    assert set(rebuilt.edge_types) == set(city.edge_types)
    for src, rel, dst in RELATIONS:
        if src != dst:  # ToUndirected flips without sorting: compare the sorted edges
            num = city[src].num_nodes
            theirs, ours = rebuilt[dst, f"rev_{rel}", src].edge_index, city[dst, f"rev_{rel}", src].edge_index
            assert torch.equal((theirs[0] * num + theirs[1]).sort().values, ours[0] * num + ours[1])
    assert torch.equal(rebuilt["person", "knows", "person"].edge_index, city["person", "knows", "person"].edge_index)


def test_same_seed_same_city() -> None:
    """The same seed gives identical tensors everywhere; another seed another city."""
    a, b, c = generate_city(SMALL, 7), generate_city(SMALL, 7), generate_city(SMALL, 8)
    for store_a, store_b in zip(a.stores, b.stores):
        assert sorted(store_a.keys()) == sorted(store_b.keys())
        for key, value in store_a.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, store_b[key]), key
    assert a["incident"].num_nodes != c["incident"].num_nodes or not torch.equal(a["incident"].time,
                                                                                 c["incident"].time)
    assert not torch.equal(a["person"].x, c["person"].x)


def _corr(values: torch.Tensor) -> float:
    """Pearson correlation of a node attribute with the node id."""
    ids = torch.arange(values.shape[0], dtype=torch.double)
    return float(torch.corrcoef(torch.stack([ids, values.double()]))[0, 1])


def test_ids_leak_nothing() -> None:
    """Id order is unrelated to time, grid position, community or group (all ordered before the shuffle:
    incidents by time, places row-major, a ring's communities and hence groups by arc)."""
    city = generate_city({**SMALL, "people": {"topology": "watts_strogatz"}}, 0)
    bound = 4 / np.sqrt(city["incident"].num_nodes)
    assert abs(_corr(city["incident"].time)) < bound
    pos = city["place"].pos
    assert abs(_corr(pos[:, 0] * 8 + pos[:, 1])) < 0.5  # 64 places: 4 sd of a null correlation
    people = city["person"]
    assert abs(_corr(people.community)) < 4 / np.sqrt(3000) and abs(_corr(people.group)) < 4 / np.sqrt(3000)


def test_parents_and_causes_are_consistent(city: HeteroData) -> None:
    """A parent is earlier; background iff no parent; social offspring involve a tie of the parent's person
    at one of their places; near-repeats land within the move kernel's reach of the parent's place."""
    inc = city["incident"]
    parent, cause = inc.parent, inc.cause
    assert torch.equal(parent < 0, cause == ic.BACKGROUND)
    has = parent >= 0
    assert bool((inc.time[parent[has]] <= inc.time[has]).all())
    assert torch.equal(inc.period, torch.clamp((inc.time / city.period_days).long(), max=city.num_periods - 1))
    person = _target(city, ("incident", "rev_involved_in", "person"))
    place = _target(city, ("incident", "occurred_at", "place"))
    social = torch.nonzero(cause == ic.SOCIAL).flatten()
    assert social.numel() > 0
    knows = city["person", "knows", "person"].edge_index
    n = city["person"].num_nodes
    tie_keys = set((knows[0] * n + knows[1]).tolist())
    assert all(k in tie_keys for k in (person[parent[social]] * n + person[social]).tolist())
    haunts = set((city["person", "lives_at", "place"].edge_index[0] * 64
                  + city["person", "lives_at", "place"].edge_index[1]).tolist())
    haunts |= set((city["person", "frequents", "place"].edge_index[0] * 64
                   + city["person", "frequents", "place"].edge_index[1]).tolist())
    assert all(k in haunts for k in (person * 64 + place).tolist())  # everyone is involved where they go
    near = torch.nonzero(cause == ic.NEAR_REPEAT).flatten()
    pos = city["place"].pos
    reach = int(np.ceil(4 * 0.5))
    assert bool(((pos[place[near]] - pos[place[parent[near]]]).abs() <= reach).all())


def test_near_repeat_kernel_is_exact() -> None:
    """The closed-form law of a reflected, rounded Gaussian move matches draws, and spreads mass the same."""
    side, sd = 5, 1.3
    src, dst, prob = pl.move_kernel(side, sd)
    kernel = np.zeros((side * side, side * side))
    kernel[src, dst] = prob
    assert np.allclose(kernel.sum(axis=1), 1.0)
    rng = np.random.default_rng(0)
    start = np.full(200_000, 6)  # place (1, 1), near a corner: reflection matters
    freq = np.bincount(pl.move(start, pl.draw_offsets(sd, start.size, rng), side), minlength=side * side) / start.size
    assert np.abs(freq - kernel[6]).max() < 4 * np.sqrt(0.25 / start.size)
    mass = rng.random((side * side, 3))
    assert np.allclose(ic.spread_over_grid(mass, side, sd), kernel.T @ mass)


def test_expected_counts_are_the_compensator() -> None:
    """Counts per (place, period) and (person, period) scatter around the stored rates like a martingale:
    totals within a few sd, mean squared error about the rate. The background alone, rescaled, does not."""
    cfg = {"num_people": 20_000, "periods": 8, "crime": {"near_repeat": 0.5, "social": 0.3}}
    z, ratio, naive_ratio, person_ratio = [], [], [], []
    for seed in range(3):
        city = generate_city(cfg, seed)
        num_places, num_people = city["place"].num_nodes, city["person"].num_nodes
        counts = _counts(city, _target(city, ("incident", "occurred_at", "place")), num_places).double()
        rate = city["place"].rate.double()
        z.append(float((counts.sum() - rate.sum()) / rate.sum().sqrt()))
        ratio.append(float(((counts - rate) ** 2).sum() / rate.sum()))
        naive = city["place"].background_rate.double()[:, None].expand_as(counts)
        naive = naive * counts.sum() / naive.sum()
        naive_ratio.append(float(((counts - naive) ** 2).sum() / naive.sum()))
        pcounts = _counts(city, _target(city, ("incident", "rev_involved_in", "person")), num_people).double()
        prate = city["person"].rate.double()
        person_ratio.append(float(((pcounts - prate) ** 2).sum() / prate.sum()))
        assert torch.allclose(prate.sum(), rate.sum(), rtol=1e-4)
    assert max(abs(v) for v in z) < 4
    assert 0.88 < np.mean(ratio) < 1.12 and 0.9 < np.mean(person_ratio) < 1.1
    assert np.mean(naive_ratio) > 1.3


def test_branching_totals_by_cause() -> None:
    """Background, near-repeat and social offspring totals match what the parameters imply."""
    city = generate_city({"num_people": 20_000, "periods": 12}, seed=1)
    inc = city["incident"]
    horizon = city.num_periods * city.period_days
    counts = torch.bincount(inc.cause, minlength=3).double()
    bg = float(city["place"].background_rate.double().sum()) * horizon
    # offspring of each incident that fall before the horizon: 1 - exp(-(T - t) / mean delay)
    reach = float((1 - torch.exp(-(horizon - inc.time.double()) / 10.0)).sum())
    person = _target(city, ("incident", "rev_involved_in", "person"))
    degree = torch.bincount(city["person", "knows", "person"].edge_index[0], minlength=city["person"].num_nodes)
    reach_social = float(((1 - torch.exp(-(horizon - inc.time.double()) / 10.0)) * (degree[person] > 0)).sum())
    for observed, expected in zip(counts.tolist(), (bg, 0.2 * reach, 0.1 * reach_social)):
        assert abs(observed - expected) < 4 * np.sqrt(expected), (counts, bg, reach)


def test_record_follows_patrols_and_groups(city: HeteroData) -> None:
    """Mean presence equals the coverage; P(recorded) is presence-weighted detection of the involved group."""
    place = city["place"]
    assert abs(float(place.patrol.double().mean()) - 0.3) < 1e-6
    inc = city["incident"]
    where = _target(city, ("incident", "occurred_at", "place"))
    pres = place.patrol[where].double()
    patrolled = torch.tensor([0.8, 0.9], dtype=torch.double)[inc.group]
    unpatrolled = torch.tensor([0.3, 0.3], dtype=torch.double)[inc.group]
    assert torch.allclose(inc.p_record.double(), pres * patrolled + (1 - pres) * unpatrolled, atol=1e-6)
    expected = float(inc.p_record.double().sum())
    var = float((inc.p_record.double() * (1 - inc.p_record.double())).sum())
    assert abs(float(inc.recorded.sum()) - expected) < 4 * np.sqrt(var)
    who = _target(city, ("incident", "rev_involved_in", "person"))
    assert torch.equal(inc.group, city["person"].group[who])
    # patrols lean towards minority residents, so the minority's incidents are recorded more often
    minority, majority = inc.p_record[inc.group == 1].mean(), inc.p_record[inc.group == 0].mean()
    assert minority > majority + 0.05


def _dissimilarity(city: HeteroData) -> float:
    """Duncan's index of the two groups' residential distributions over places."""
    home = _target(city, ("person", "lives_at", "place"))
    group = city["person"].group
    a = torch.bincount(home[group == 0], minlength=city["place"].num_nodes).double()
    b = torch.bincount(home[group == 1], minlength=city["place"].num_nodes).double()
    return float(0.5 * (a / a.sum() - b / b.sum()).abs().sum())


def test_segregation_knob() -> None:
    """At 1 everyone lives in their group's territory; the index falls as the knob falls."""
    full = generate_city({**SMALL, "segregation": 1.0}, 3)
    home = _target(full, ("person", "lives_at", "place"))
    assert torch.equal(full["place"].territory[home], full["person"].group)
    index = [_dissimilarity(generate_city({**SMALL, "segregation": s}, 3)) for s in (0.0, 0.5, 1.0)]
    assert index[0] < 0.15 < index[1] < index[2] and index[2] > 0.9


def test_small_and_edge_configs() -> None:
    """The smallest city, no frequented places and no triggering still build."""
    tiny = generate_city({"num_people": 50, "people": {"num_communities": 5}, "frequents": 0}, 0)
    assert tiny["place"].num_nodes == 4 and tiny["person", "frequents", "place"].edge_index.shape[1] == 0
    flat = generate_city({"num_people": 500, "crime": {"near_repeat": 0.0, "social": 0.0, "hotspot_sd": 0.0}}, 0)
    assert bool((flat["incident"].cause == ic.BACKGROUND).all())
    assert torch.allclose(flat["place"].background_rate, torch.full((9,), 0.02))


@pytest.mark.parametrize("cfg, field", [
    ({"num_people": 10}, "data.num_people"),
    ({"crime": {"near_repeat": 0.7, "social": 0.4}}, "data.crime.social"),
    ({"crime": {"spread": -1}}, "data.crime.spread"),
    ({"patrol": {"coverage": 1.0}}, "data.patrol.coverage"),
    ({"groups": {"a": 0.5, "b": 0.6}}, "data.groups"),
    ({"observation": {"detection_patrolled": {"majority": 0.8, "minority": 1.5}}},
     "data.observation.detection_patrolled.minority"),
    ({"observation": {"detection_unpatrolled": {"majority": 0.3}}}, "data.observation.detection_unpatrolled.minority"),
    ({"patrol": {"group_effect": {"martians": 1.0}}}, "data.patrol.group_effect.martians"),
    ({"people": {"topology": "grid"}}, "data.people.topology"),
    ({"crime": {"rate": 0.1}}, "data.crime.rate"),
    ({"num_peple": 100}, "data.num_peple"),
])
def test_bad_config_is_refused_in_one_line(cfg: dict, field: str) -> None:
    """Each refusal names the field, the value and what is allowed, on one line."""
    with pytest.raises(ConfigError) as err:
        generate_city(cfg, 0)
    assert str(err.value).startswith(field + "=") and "\n" not in str(err.value), str(err.value)
