"""Node-level DP-SGD on the city (hetero_dpsgd): the group bound against the examples one unit changes (worst cases
reach it), exact per-example gradients, the accountant against dp-accounting, refusals, runs through the city path."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import dp_accounting as dpa
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError, ConfigErrors
from gnnrisk.models.hetero import HETERO_MODELS, hetero_config
from gnnrisk.pipeline import execute_experiment, prepare_run
from gnnrisk.privacy.city import dpsgd_accounting as da
from gnnrisk.privacy.city.aggregation import capped_city
from gnnrisk.privacy.city.dpsgd import (
    dpsgd_privacy,
    dpsgd_snapshot,
    forecast_hetero_dpsgd,
    hetero_dpsgd_settings,
)
from gnnrisk.privacy.city.dpsgd_model import (
    forward,
    init_params,
    message_graph,
    message_snapshot,
    per_example_grads,
    poisson_loss,
)
from gnnrisk.privacy.city.mechanisms import build_city_mechanism
from gnnrisk.privacy.city.units import parse_unit
from gnnrisk.train.city_forecast import Record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "foundation"))
from city_neighbours import drop_incident, isolate_person
from foundation_helpers import compose_cfg

SMALL_CITY = {"num_people": 300, "people_per_place": 12, "periods": 8}  # 25 places (5 x 5)
WIDE_CITY = {"num_people": 900, "people_per_place": 4, "periods": 6}  # 225 places (15 x 15): K = 2 bounds below P
CAPS1 = {"knows": 2, "frequents": 3, "involved_in": 2}
CAPS2 = {"knows": 2, "frequents": 1, "involved_in": 1}
RUN = ("data=synthetic_city", "data.num_people=600", "device=cpu", "threads=1", "model=hetero_sage",
       "privacy=hetero_dpsgd", "eval.origins=1")


@pytest.fixture(scope="module")
def small() -> HeteroData:
    return generate_city(SMALL_CITY, seed=0)


@pytest.fixture(scope="module")
def wide() -> HeteroData:
    return generate_city(WIDE_CITY, seed=0)


# --- neighbouring cities ------------------------------------------------------------------------------------------



def _changed(world: HeteroData, neighbour: HeteroData, unit: str, layers: int, origin: int,
             record_features: bool = True) -> set[int]:
    """Places whose example (loss at `origin`, fixed random hetero_sage) differs between the two cities."""
    losses, params = [], None
    for city in (world, neighbour):
        record = Record(city)
        graph = message_graph(dpsgd_snapshot(city, record, origin, 3, parse_unit(unit), record_features))
        if params is None:
            torch.manual_seed(0)
            params = init_params(graph, hetero_config("hetero_sage", {"num_layers": layers}))
        losses.append(poisson_loss(forward(params, graph, layers)[0], record.counts("place")[:, origin + 1]))
    return set(((losses[0] - losses[1]).abs() > 1e-10).nonzero().flatten().tolist())


def _bound(data: HeteroData, unit: str, caps: dict[str, int], layers: int, record_features: bool = True) -> int:
    return da.reach_bound(parse_unit(unit), caps, layers, da.ball_sizes(data, layers), record_features,
                          int(data["place"].num_nodes))


def _place(data: HeteroData, row: int, col: int) -> int:
    pos = data["place"].pos.long()
    return int(((pos[:, 0] == row) & (pos[:, 1] == col)).nonzero()[0])


def _set_out(data: HeteroData, rel: tuple[str, str, str], node: int, targets: list[int]) -> None:
    """Replace `node`'s out-edges of `rel` (and their reverse) by edges to `targets`."""
    ei = data[rel].edge_index
    ei = torch.cat([ei[:, ei[0] != node], torch.tensor([[node] * len(targets), targets], dtype=torch.long)], dim=1)
    data[rel].edge_index = ei
    if rel[0] != rel[2]:
        data[rel[2], f"rev_{rel[1]}", rel[0]].edge_index = ei.flip(0)


def _worst_person(data: HeteroData, homes: list[tuple[int, int]], incident_places: list[tuple[int, int]],
                  friends: list[list[tuple[int, int]]], origin: int) -> tuple[HeteroData, int]:
    """A city in which a person v has home and frequented places `homes` (home first), recorded incidents (periods
    <= origin) at `incident_places`, and knows out-ties to friends, each living at / frequenting its places."""
    out = data.clone()
    record = Record(out)
    clean = (torch.bincount(record.person, minlength=out["person"].num_nodes) == 0).nonzero().flatten()
    v, mates = int(clean[0]), [int(u) for u in clean[1: 1 + len(friends)]]
    for person, places in [(v, homes), *zip(mates, friends)]:
        _set_out(out, ("person", "lives_at", "place"), person, [_place(out, *places[0])])
        _set_out(out, ("person", "frequents", "place"), person, [_place(out, *p) for p in places[1:]])
    _set_out(out, ("person", "knows", "person"), v, mates)
    chosen = record.index[(record.period <= origin) & (record.period >= 1)][: len(incident_places)]
    occ, inv = out["incident", "occurred_at", "place"].edge_index, out["person", "involved_in", "incident"].edge_index
    for w, place in zip(chosen.tolist(), incident_places):
        occ[1, occ[0] == w] = _place(out, *place)
        inv[0, inv[1] == w] = v
    for rel, ei in ((("incident", "occurred_at", "place"), occ), (("person", "involved_in", "incident"), inv)):
        out[rel].edge_index = ei
        out[rel[2], f"rev_{rel[1]}", rel[0]].edge_index = ei.flip(0)
    return out, v


# --- (a) the group bound -----------------------------------------------------------------------------------------

def test_one_layer_person_bound_holds_and_is_reached(small: HeteroData) -> None:
    """K = 1: N_1 = D_involved B_1 + 1 + D_frequents = 14 on the 5 x 5 grid; people changed no more, per origin and
    over a fit's origins (N_1 T), and a person with disjoint places and interior incident places changes exactly 14;
    without the record-derived features N_1 = D_involved + 1 + D_frequents = 6, reached too."""
    unit = parse_unit("person")
    bound = _bound(small, "person", CAPS1, 1)
    assert bound == 2 * 5 + 1 + 3
    capped = capped_city(small, unit, CAPS1, seed=0)
    for v in (0, 17, 123, 299):
        neighbour = isolate_person(capped, v)
        per_origin = [len(_changed(capped, neighbour, "person", 1, s)) for s in range(5)]
        assert max(per_origin) <= bound and sum(per_origin) <= bound * 5
    worst, v = _worst_person(small, [(0, 4), (4, 0), (0, 0), (4, 4)], [(1, 1), (3, 3)], [], origin=5)
    capped = capped_city(worst, unit, CAPS1, seed=0)
    assert len(_changed(capped, isolate_person(capped, v), "person", 1, 5)) == bound
    assert _bound(small, "person", CAPS1, 1, False) == 6
    assert len(_changed(capped, isolate_person(capped, v), "person", 1, 5, record_features=False)) == 6


def test_two_layer_person_bound_holds_and_is_reached(wide: HeteroData) -> None:
    """K = 2: N_2 = D_inv B_2 + (1 + D_freq) B_1 + D_knows (1 + D_freq) = 13 + 10 + 4 = 27 on a 15 x 15 grid: the most
    popular person (knows in-degree far above D_knows: in-ties change only their own row) and others stay within it;
    a worst case reaches it exactly."""
    unit = parse_unit("person")
    bound = _bound(wide, "person", CAPS2, 2)
    assert da.ball_sizes(wide, 2) == [1, 5, 13] and bound == 27
    capped = capped_city(wide, unit, CAPS2, seed=0)
    knows = capped["person", "knows", "person"].edge_index
    assert int(torch.bincount(knows[0]).max()) <= CAPS2["knows"]
    popular = int(torch.bincount(knows[1]).argmax())
    assert int(torch.bincount(knows[1])[popular]) > 3 * CAPS2["knows"]
    for v in (popular, 0, 451):
        assert len(_changed(capped, isolate_person(capped, v), "person", 2, 4)) <= bound
    worst, v = _worst_person(wide, [(10, 3), (3, 10)], [(3, 3)], [[(13, 7), (0, 13)], [(14, 14), (7, 0)]], origin=4)
    capped = capped_city(worst, unit, CAPS2, seed=0)
    assert len(_changed(capped, isolate_person(capped, v), "person", 2, 4)) == bound


@pytest.mark.parametrize("layers", [1, 2])
def test_incident_bound_is_the_ball_around_its_place(wide: HeteroData, layers: int) -> None:
    """One recorded incident changes at most B_K places (its place's count features and its message), exactly B_K
    for an interior place; its label (period origin + 1) is at that place, inside the count."""
    bound = _bound(wide, "incident", {}, layers)
    assert bound == [1, 5, 13][layers]
    record = Record(wide)
    pos = wide["place"].pos[record.place]
    interior = (pos >= layers).all(1) & (pos <= 14 - layers).all(1)
    seen = record.index[interior & (record.period <= 3)][:3].tolist()
    label = record.index[interior & (record.period == 4)][:1].tolist()
    for w in seen + label:
        count = len(_changed(wide, drop_incident(wide, w), "incident", layers, 3))
        assert count <= bound and (count == bound or w in label)


# --- (b) per-example gradients -----------------------------------------------------------------------------------

@pytest.mark.parametrize("layers", [1, 2, 3])
def test_per_example_gradients_are_each_examples_gradient(small: HeteroData, layers: int) -> None:
    """The vectorised per-example gradients equal autograd of each example's loss alone, every parameter; the
    functional forward is hetero_sage's (to_hetero) forward with the same parameters."""
    record = Record(small)
    graph = message_graph(dpsgd_snapshot(small, record, 5, 3, parse_unit("person"), True))
    cfg = hetero_config("hetero_sage", {"num_layers": layers, "hidden_channels": 8})
    torch.manual_seed(1)
    params = init_params(graph, cfg)
    torch.manual_seed(1)
    module = HETERO_MODELS["hetero_sage"](message_snapshot(graph).metadata(), cfg, "place")
    with torch.no_grad():
        reference = module(message_snapshot(graph))
    assert torch.allclose(forward(params, graph, layers)[0], reference, atol=1e-5)
    y = record.counts("place")[:, 6]
    grads, _ = per_example_grads(params, graph, layers, y, chunk=97)  # small chunks: the chunking is exercised
    for p in (0, 7, 24):
        leaves = {n: t.clone().requires_grad_() for n, t in params.items()}
        loss = poisson_loss(forward(leaves, graph, layers)[0][p], y[p])
        for n, g in zip(leaves, torch.autograd.grad(loss, list(leaves.values()))):
            assert torch.allclose(grads[n][p], g, atol=1e-6), n


# --- (c) accounting ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps,target,delta", [(1, 1.0, 1e-5), (50, 1.0, 2e-5), (150, 8.0, 2e-5), (300, 4.0, 1e-6),
                                                (20, 64.0, 1e-4)])
def test_spent_within_target_and_recounted(steps: int, target: float, delta: float) -> None:
    """Calibrated epsilon <= target (and close); dp-accounting's RDP recount of the event is at most it, within 5%."""
    z, spent = da.calibrate(target, delta, steps, context="")
    assert 0.9 * target < spent <= target
    event = da.hetero_dpsgd_dp_event({"epsilon": spent, "noise_multiplier": z, "steps_composed": steps})
    accountant = dpa.rdp.RdpAccountant()
    accountant.compose(event)
    recount = accountant.get_epsilon(delta)
    assert recount - 1e-6 <= spent <= recount * 1.05


def test_privacy_fields(small: HeteroData) -> None:
    """Group = N_K x training origins per fit, sensitivity 2 G C, noise z 2 G C, steps composed over the fits, default
    delta 1/(10 N) per unit; inf: no noise."""
    settings = hetero_dpsgd_settings({"max_degree": CAPS1, "steps": 7, "max_grad_norm": 0.5})
    p = dpsgd_privacy(small, parse_unit("person"), 2.0, None, settings, 1, [4, 5, 6])
    assert p["mechanism"] == "hetero_dpsgd" and p["privacy_unit"] == "person" and p["reach_per_origin"] == 14
    assert p["group_size"] == [56, 70, 84] and p["sensitivity"] == [56.0, 70.0, 84.0]
    assert p["noise_std"] == pytest.approx([p["noise_multiplier"] * s for s in p["sensitivity"]])
    assert p["steps_composed"] == 21 and p["epsilon"] <= 2.0 and p["delta"] == pytest.approx(1 / 3000)
    inc = dpsgd_privacy(small, parse_unit("incident"), math.inf, None, settings, 2, [5])
    assert inc["epsilon"] is None and inc["noise_std"] == [0.0] and inc["group_size"] == [13 * 5]
    assert "incidents" in inc["delta_default"] and inc["max_degree_knows"] is None


# --- (d) refusals ------------------------------------------------------------------------------------------------

def test_bad_fields_refused_in_one_line(small: HeteroData) -> None:
    for cfg, field in [({"unit": "edge:knows"}, "privacy.unit"), ({"unit": "node"}, "privacy.unit"),
                       ({"max_degree": {"knows": 0}}, "privacy.max_degree.knows"),
                       ({"max_degree": {"lives_at": 2}}, "privacy.max_degree.lives_at"),
                       ({"steps": 0}, "privacy.steps"), ({"record_features": "yes"}, "privacy.record_features"),
                       ({"hops": 2}, "privacy.hops"), ({"epsilon": 0}, "privacy.epsilon")]:
        with pytest.raises(ConfigError) as err:
            build_city_mechanism({"name": "hetero_dpsgd", "unit": "person", "epsilon": 1.0, **cfg})
        assert err.value.field == field and "\n" not in str(err.value)
    mechanism = build_city_mechanism({"name": "hetero_dpsgd", "unit": "person", "epsilon": 1.0})
    for model, target, field in [("hetero_gat", "place", "model.name"), ("hetero_sage", "person", "eval.target")]:
        with pytest.raises(ConfigError) as err:
            mechanism.check(model, target)
        assert err.value.field == field and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="model.dropout"):
        mechanism.forecast(small, "hetero_sage", {"dropout": 0.5}, {}, [5], 0, "place")


def test_whole_runs_refused_field_by_field() -> None:
    with pytest.raises(ConfigErrors) as err:
        prepare_run(compose_cfg(*RUN, "privacy.max_degree.knows=0", "privacy.unit=node"))
    assert {e.field for e in err.value.errors} == {"privacy.max_degree.knows", "privacy.unit"}
    for overrides, field in [(("model=hgt",), "model.name"), (("eval.target=person",), "eval.target")]:
        with pytest.raises(ConfigError) as one:
            prepare_run(compose_cfg(*RUN, *overrides))
        assert one.value.field == field and "\n" not in str(one.value)
    with pytest.raises(ConfigError) as loop:
        prepare_run(compose_cfg(*RUN, "audit=feedback"))
    assert loop.value.field == "audit" and "not accounted" in str(loop.value)
    with pytest.raises(ConfigError, match="city"):
        prepare_run(compose_cfg("data.num_nodes=300", "privacy=hetero_dpsgd", "device=cpu"))


# --- (e) runs ----------------------------------------------------------------------------------------------------

def test_a_run_through_the_city_path(tmp_path: Path) -> None:
    """Person unit: finite forecasts, epsilon <= target covering the weights, the curve and the forecasts in
    diagnostics/; epsilon inf:
    no noise, not private, the curve in history.csv."""
    execute_experiment(compose_cfg(*RUN, "privacy.unit=person", "privacy.epsilon=4", "privacy.steps=2"),
                       tmp_path / "private")
    m = json.loads((tmp_path / "private" / "metrics.json").read_text())
    assert m["mechanism"] == "hetero_dpsgd" and m["privacy_unit"] == "person" and 0 < m["epsilon"] <= 4.0
    assert m["epsilon_covers"] == "weights" and m["diagnostics_outside_epsilon"] == "diagnostics"
    assert m["forecast_file"] == "diagnostics/forecast.csv" and not (tmp_path / "private" / "forecast.csv").exists()
    assert (tmp_path / "private" / "diagnostics" / "FORECASTS_NOT_COVERED_BY_EPSILON.txt").is_file()
    assert m["forecasts_covered"] is False and "not covered" in m["epsilon_covers_detail"]
    assert m["group_size"] == [m["reach_per_origin"] * m["fit_origins"][0]] and m["steps_composed"] == 2
    assert math.isfinite(m["auroc_true"]) and (tmp_path / "private" / "diagnostics" / "history.csv").is_file()
    assert not (tmp_path / "private" / "history.csv").exists()
    execute_experiment(compose_cfg(*RUN, "privacy.unit=incident", "privacy.epsilon=inf", "privacy.steps=2",
                                   "model.num_layers=1"), tmp_path / "inf")
    m = json.loads((tmp_path / "inf" / "metrics.json").read_text())
    assert m["epsilon"] is None and m["epsilon_covers"] is None and m["noise_multiplier"] == 0.0
    assert (tmp_path / "inf" / "history.csv").is_file() and m["forecast_file"] == "forecast.csv"


def test_seeded_and_noisy(small: HeteroData) -> None:
    """A seed reproduces the forecast; noise changes it; scores are finite and positive."""
    settings = hetero_dpsgd_settings({"steps": 3, "max_degree": CAPS1})
    unit, model = parse_unit("person"), {"num_layers": 1}
    a, pa = forecast_hetero_dpsgd(small, unit, 4.0, None, settings, model, {}, [5, 6], 0)
    b, _ = forecast_hetero_dpsgd(small, unit, 4.0, None, settings, model, {}, [5, 6], 0)
    c, _ = forecast_hetero_dpsgd(small, unit, math.inf, None, settings, model, {}, [5, 6], 0)
    assert torch.equal(a.scores, b.scores) and not torch.equal(a.scores, c.scores)
    assert a.scores.shape == (2, 25) and bool((a.scores > 0).all() and torch.isfinite(a.scores).all())
    assert pa["fits"] == 2 and pa["steps_composed"] == 6
