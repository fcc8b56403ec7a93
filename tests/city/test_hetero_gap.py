"""Aggregation perturbation per relation on the city (hetero GAP): per-unit sensitivity checked on neighbouring
cities, the accountant against dp-accounting, caps, determinism, no-noise runs, utility, refusals."""

from __future__ import annotations

import math

import dp_accounting as dpa
import numpy as np
import pytest
import torch
from city_neighbours import drop_incident, isolate_person
from torch.func import functional_call, grad, vmap
from torch_geometric.data import HeteroData

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.privacy.city import aggregation_accounting as aa
from gnnrisk.privacy.city.aggregation import (
    HETERO_GAP_DEFAULTS,
    capped_city,
    combine,
    forecast_hetero_gap,
    head_mlp,
    hetero_gap_dp_event,
    hetero_gap_settings,
    hop_release,
    outs_grads,
    per_example_parts,
    snapshot_inputs,
)
from gnnrisk.privacy.city.units import parse_unit
from gnnrisk.train.city_forecast import Record
from gnnrisk.train.hotspot_metrics import score_forecast

HOT = {"num_people": 300, "people_per_place": 12, "periods": 8,
       "crime": {"background_rate": 0.08, "near_repeat": 0.4}}
FAST = {"epochs": 10}
TRAIN = {"epochs": 60, "patience": 10}


@pytest.fixture(scope="module")
def city() -> HeteroData:
    """300 people on a 5 x 5 grid, 8 periods, ~500 recorded incidents."""
    return generate_city(HOT, seed=0)


# --- sensitivity on neighbouring cities -------------------------------------------------------------------------

def _without(edges: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """The edges whose column is not marked in `drop`."""
    return edges[:, ~drop]




def _drop_tie(data: HeteroData, rel: str, a: int, b: int) -> HeteroData:
    """The neighbour without the tie a -> b of `rel` (and its reverse: knows b -> a, or rev_<rel>)."""
    out = data.clone()
    if rel == "knows":
        ei = out["person", "knows", "person"].edge_index
        out["person", "knows", "person"].edge_index = _without(
            ei, ((ei[0] == a) & (ei[1] == b)) | ((ei[0] == b) & (ei[1] == a)))
    else:
        ei = out["person", rel, "place"].edge_index
        out["person", rel, "place"].edge_index = _without(ei, (ei[0] == a) & (ei[1] == b))
        ei = out["place", f"rev_{rel}", "person"].edge_index
        out["place", f"rev_{rel}", "person"].edge_index = _without(ei, (ei[0] == b) & (ei[1] == a))
    return out


def _hop_differences(world: HeteroData, neighbour: HeteroData, unit: str, origin: int, hops: int,
                     own_people: tuple[int, ...] = ()) -> list[float]:
    """Per hop k, the L2 distance between the two cities' noise-free hop-k releases, every relation's rows of the
    nodes present in both (the unit's own rows left out), both computed from the first city's h^{k-1} (the
    coupling of adaptive composition: conditioned on the earlier releases). Hop 0 must agree on those nodes."""
    u = parse_unit(unit)
    rec, rec2 = Record(world), Record(neighbour)
    snap, snap2 = snapshot_inputs(world, rec, origin, 3, u), snapshot_inputs(neighbour, rec2, origin, 3, u)
    # node maps neighbour -> world (incidents renumbered per snapshot: map through their ids in the city)
    seen, seen2 = rec.index[rec.period <= origin], rec2.index[rec2.period <= origin]
    pos = {int(i): k for k, i in enumerate(seen)}
    maps = {"person": torch.arange(snap2["person"].num_nodes), "place": torch.arange(snap2["place"].num_nodes),
            "incident": torch.tensor([pos[int(i)] for i in seen2], dtype=torch.long)}
    keep = {t: torch.ones(snap2[t].num_nodes, dtype=torch.bool) for t in maps}
    keep["person"][list(own_people)] = False
    for t in maps:  # hop 0: features do not depend on the unit
        assert torch.equal(snap[t].x[maps[t]][keep[t]], snap2[t].x[keep[t]]), t
    h = {t: snap[t].x for t in snap.node_types}
    out = []
    for _ in range(hops):
        h2 = {t: h[t][maps[t]] for t in maps}
        z, z2 = hop_release(snap, h, 0.0), hop_release(snap2, h2, 0.0)
        diff = sum(float((z[r][maps[r[2]]][keep[r[2]]] - z2[r][keep[r[2]]]).pow(2).sum()) for r in z)
        out.append(math.sqrt(diff))
        h = combine(snap, z)
    return out


CAPS = {"knows": 2, "frequents": 3, "involved_in": 2}


@pytest.mark.parametrize("rel", ["knows", "lives_at", "frequents"])
def test_edge_unit_sensitivity_is_sqrt2_and_attained(city: HeteroData, rel: str) -> None:
    """Removing one tie moves one hop's release by exactly sqrt(2) (two unit-norm messages), at every hop."""
    unit = parse_unit(f"edge:{rel}")
    bound = aa.hop_sensitivity(unit, CAPS)
    assert bound == pytest.approx(math.sqrt(2))
    dst = "person" if rel == "knows" else "place"
    ei = city["person", rel, dst].edge_index
    for col in (0, ei.size(1) // 2, ei.size(1) - 1):
        a, b = int(ei[0, col]), int(ei[1, col])
        diffs = _hop_differences(city, _drop_tie(city, rel, a, b), str(unit), origin=5, hops=3)
        assert all(d <= bound + 1e-5 for d in diffs)
        assert all(d >= bound - 1e-5 for d in diffs)  # attained: both messages are unit rows, into distinct rows


def test_incident_unit_sensitivity(city: HeteroData) -> None:
    """One recorded incident moves each hop by sqrt(2): one message to its place, one to its person; its own rows
    (messages into it) stay internal; an incident after the origin changes nothing."""
    unit = parse_unit("incident")
    bound = aa.hop_sensitivity(unit, CAPS)
    rec = Record(city)
    for w in rec.index[:6].tolist():
        period = int(city["incident"].period[w])
        diffs = _hop_differences(city, drop_incident(city, w), "incident", origin=max(period, 1), hops=2)
        assert all(bound - 1e-5 <= d <= bound + 1e-5 for d in diffs)
    late = int(rec.index[rec.period == rec.period.max()][0])
    assert _hop_differences(city, drop_incident(city, late), "incident", origin=int(rec.period.max()) - 1,
                            hops=2) == [0.0, 0.0]


def _worst_person(data: HeteroData, caps: dict[str, int]) -> tuple[HeteroData, int]:
    """A city with a person v of >= D_knows ties, D_frequents frequented places and D_involved recorded incidents
    at one place at one time (their messages into that place's row are aligned): the bound is attained."""
    out = data.clone()
    deg = torch.bincount(out["person", "knows", "person"].edge_index[0], minlength=out["person"].num_nodes)
    freq = torch.bincount(out["person", "frequents", "place"].edge_index[0], minlength=out["person"].num_nodes)
    rec = Record(out)
    clean = torch.bincount(rec.person, minlength=out["person"].num_nodes) == 0  # none of their own
    v = int(((deg >= caps["knows"]) & (freq == caps["frequents"]) & clean).nonzero()[0])
    chosen = rec.index[rec.period == 2][: caps["involved_in"]]
    place = int(out["person", "lives_at", "place"].edge_index[1, 0])
    occ = out["incident", "occurred_at", "place"].edge_index.clone()
    inv = out["person", "involved_in", "incident"].edge_index.clone()
    for w in chosen.tolist():
        occ[1, occ[0] == w] = place
        inv[0, inv[1] == w] = v
    time = out["incident"].time.clone()
    time[chosen] = float(time[chosen[0]])
    out["incident"].time = time
    for rel, ei in ((("incident", "occurred_at", "place"), occ), (("person", "involved_in", "incident"), inv)):
        out[rel].edge_index = ei
        out[rel[2], f"rev_{rel[1]}", rel[0]].edge_index = ei.flip(0)
    return out, v


def test_person_unit_sensitivity_bound_and_worst_case(city: HeteroData) -> None:
    """On the capped city, removing a person moves each hop by <= sqrt(D_knows + 1 + D_frequents + D_involved^2)
    (its incidents may share one place's row), attained by a worst-case person; the cap is what bounds it."""
    unit = parse_unit("person")
    bound = aa.hop_sensitivity(unit, CAPS)
    assert bound == pytest.approx(math.sqrt(2 + 1 + 3 + 4))
    capped = capped_city(city, unit, CAPS, seed=0)
    for v in (0, 17, 123, 299):
        diffs = _hop_differences(capped, isolate_person(capped, v), "person", origin=5, hops=2, own_people=(v,))
        assert all(d <= bound + 1e-5 for d in diffs)
    worst, v = _worst_person(city, CAPS)
    capped = capped_city(worst, unit, CAPS, seed=0)
    diffs = _hop_differences(capped, isolate_person(capped, v), "person", origin=5, hops=2, own_people=(v,))
    assert all(bound - 1e-4 <= d <= bound + 1e-5 for d in diffs)
    # without the caps the same person moves the release further
    loose = capped_city(worst, unit, {"knows": 1000, "frequents": 1000, "involved_in": 1000}, seed=0)
    assert _hop_differences(loose, isolate_person(loose, v), "person", origin=5, hops=1, own_people=(v,))[0] > bound


def test_caps_hold_on_the_capped_city(city: HeteroData) -> None:
    """Each person keeps <= D out-edges per relation, one home, <= D_involved recorded incidents; reverses agree."""
    capped = capped_city(city, parse_unit("person"), CAPS, seed=3)
    n = city["person"].num_nodes
    for rel, dst, cap in (("knows", "person", 2), ("lives_at", "place", 1), ("frequents", "place", 3)):
        ei = capped["person", rel, dst].edge_index
        assert int(torch.bincount(ei[0], minlength=n).max()) <= cap
        if dst == "place":
            rev = capped["place", f"rev_{rel}", "person"].edge_index
            assert sorted(map(tuple, rev.flip(0).T.tolist())) == sorted(map(tuple, ei.T.tolist()))
    rec = Record(capped)
    assert int(torch.bincount(rec.person, minlength=n).max()) <= 2
    assert rec.index.numel() < Record(city).index.numel()
    assert capped_city(city, parse_unit("incident"), CAPS, seed=3) is city  # no cap needed


def test_per_example_gradient_norms_match_per_sample_gradients() -> None:
    """The head's one-pass per-example norms |grad f_b| equal torch.func's per-sample gradients' norms, and the
    layer-wise weighted sums equal the gradient of sum_b w_b f_b."""
    torch.manual_seed(0)
    model, x, w = head_mlp(9, 6, 3), torch.randn(13, 9), torch.randn(13)
    acts, outs = per_example_parts(model, x)
    grads = outs_grads(outs)
    norms = torch.sqrt(sum(g.pow(2).sum(1) * (a.pow(2).sum(1) + 1.0) for a, g in zip(acts, grads)))
    params = {k: v.detach() for k, v in model.named_parameters()}
    per = vmap(grad(lambda p, row: functional_call(model, p, (row.unsqueeze(0),)).squeeze()), in_dims=(None, 0))(
        params, x)
    assert torch.allclose(norms, torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in per.values())), atol=1e-5)
    (model(x).squeeze(-1) * w).sum().backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for lin, a, g in zip(linears, acts, grads):
        assert torch.allclose((w.unsqueeze(1) * g).T @ a, lin.weight.grad, atol=1e-5)
        assert torch.allclose((w.unsqueeze(1) * g).sum(0), lin.bias.grad, atol=1e-5)


# --- accounting ---------------------------------------------------------------------------------------------------

def _recount(event: dpa.DpEvent, delta: float) -> tuple[float, float]:
    """dp-accounting's epsilon of `event` at `delta`: RDP (its default orders) and PLD."""
    rdp = dpa.rdp.RdpAccountant()
    rdp.compose(event)
    pld = dpa.pld.PLDAccountant(value_discretization_interval=1e-3)
    pld.compose(event)
    return rdp.get_epsilon(delta), pld.get_epsilon(delta)


@pytest.mark.parametrize("releases,group,rates,steps,target", [
    (14, 0, [], [], 1.0), (22, 0, [], [], 8.0),
    (14, 1, [0.5, 0.4], [40, 50], 2.0), (22, 1, [0.1, 0.09, 0.08], [500, 550, 600], 4.0),
    (14, 2, [0.3], [100], 1.0), (33, 3, [0.05, 0.05], [1000, 1000], 16.0)])
def test_spent_within_target_and_recounted(releases: int, group: int, rates: list[float], steps: list[int],
                                           target: float) -> None:
    """Calibrated epsilon <= target; dp-accounting's RDP recount of the run's event agrees (ours >= it, close),
    and its PLD accountant, tighter, stays below ours."""
    delta = 1e-4
    z, spent, alone = aa.calibrate(target, delta, releases, group, rates, steps, context="")
    assert spent <= target and spent > 0.9 * target
    privacy = {"epsilon": spent, "noise_multiplier": z, "aggregation_releases": releases, "head_group": group,
               "head_sample_rates": rates, "head_steps": steps}
    rdp, pld = _recount(hetero_gap_dp_event(privacy), delta)
    assert spent >= rdp - 1e-6 and spent <= rdp * 1.06
    assert pld <= spent + 1e-6
    assert alone["aggregation_epsilon_alone"] <= spent and alone.get("head_epsilon_alone", 0.0) <= spent


def test_run_privacy_fields_and_event(city: HeteroData) -> None:
    """A run's privacy dict: unit, default delta 1/(10 N), sensitivity, caps, composed releases; its event recounts."""
    settings = hetero_gap_settings({**FAST, "max_degree": CAPS})
    forecast, privacy = forecast_hetero_gap(city, parse_unit("person"), 2.0, None, settings, TRAIN, [4, 5], 0, "place")
    assert privacy["mechanism"] == "hetero_gap" and privacy["privacy_unit"] == "person"
    assert privacy["delta"] == pytest.approx(1 / (10 * 300)) and "300 people" in privacy["delta_default"]
    assert privacy["aggregation_sensitivity"] == pytest.approx(math.sqrt(10))
    assert privacy["max_degree_knows"] == 2 and privacy["head_group"] == 2 and privacy["head_refits"] == 2
    assert privacy["aggregation_releases"] == 6 * 2 and privacy["snapshots_released"] == 6
    assert privacy["aggregation_noise_std"] == pytest.approx(privacy["noise_multiplier"] * math.sqrt(10))
    assert privacy["head_noise_std"] == pytest.approx(privacy["noise_multiplier"] * 2 * 1.0)
    assert privacy["releases_composed"] == 12 + sum(privacy["head_steps"])
    assert privacy["epsilon"] <= 2.0
    rdp, _ = _recount(hetero_gap_dp_event(privacy), privacy["delta"])
    assert privacy["epsilon"] >= rdp - 1e-6 and privacy["epsilon"] <= rdp * 1.05
    assert forecast.scores.shape == (2, city["place"].num_nodes) and torch.isfinite(forecast.scores).all()
    assert all("train_loss" not in row for row in forecast.history)  # private labels: no loss logged
    _, edge = forecast_hetero_gap(city, parse_unit("edge:knows"), 2.0, None, settings, TRAIN, [4, 5], 0, "place")
    ties = city["person", "knows", "person"].edge_index.size(1) // 2
    assert edge["delta"] == pytest.approx(1 / (10 * ties)) and not edge["head_private"] and edge["head_steps"] == []
    _, inc = forecast_hetero_gap(city, parse_unit("incident"), 2.0, 1e-5, settings, TRAIN, [5], 0, "person")
    assert inc["delta"] == 1e-5 and inc["head_group"] == 1 and inc["epsilon"] <= 2.0


def test_the_loops_refits_are_composed_into_one_epsilon(city: HeteroData) -> None:
    """A forecast with the patrol loop's refits (`also`): every snapshot of every refit is counted, one noise
    multiplier covers them (larger than the forecast's alone), dp-accounting recounts it; a refit drawn with that
    accounting reuses the noise level and draws fresh noise per stream."""
    settings = hetero_gap_settings(FAST)
    unit = parse_unit("incident")
    _, alone = forecast_hetero_gap(city, unit, 2.0, None, settings, TRAIN, [5], 0, "place")
    _, both = forecast_hetero_gap(city, unit, 2.0, None, settings, TRAIN, [5], 0, "place", also=[[3], [4]])
    assert both["forecasts_composed"] == 3 and both["head_refits"] == 3
    assert both["aggregation_releases"] == (6 + 4 + 5) * settings["hops"]
    assert both["epsilon"] <= 2.0 and both["noise_multiplier"] > alone["noise_multiplier"]
    rdp, _ = _recount(hetero_gap_dp_event(both), both["delta"])
    assert both["epsilon"] >= rdp - 1e-6 and both["epsilon"] <= rdp * 1.06
    one, p1 = forecast_hetero_gap(city, unit, 2.0, None, settings, TRAIN, [4], 0, "place", accounted=both, stream=1)
    two, _ = forecast_hetero_gap(city, unit, 2.0, None, settings, TRAIN, [4], 0, "place", accounted=both, stream=2)
    assert p1 == both and not torch.equal(one.scores, two.scores)


# --- runs ---------------------------------------------------------------------------------------------------------

def test_deterministic_and_noise_free_at_infinity(city: HeteroData) -> None:
    """A fixed seed reproduces the run; another seed draws other noise; epsilon inf adds none and reports None."""
    settings = hetero_gap_settings(FAST)
    unit = parse_unit("incident")
    a, pa = forecast_hetero_gap(city, unit, 4.0, None, settings, TRAIN, [5, 6], 0, "place")
    b, pb = forecast_hetero_gap(city, unit, 4.0, None, settings, TRAIN, [5, 6], 0, "place")
    c, _ = forecast_hetero_gap(city, unit, 4.0, None, settings, TRAIN, [5, 6], 1, "place")
    assert torch.equal(a.scores, b.scores) and pa == pb and not torch.equal(a.scores, c.scores)
    _, p = forecast_hetero_gap(city, unit, math.inf, None, settings, TRAIN, [5, 6], 0, "place")
    assert p["epsilon"] is None and p["delta"] is None and p["noise_multiplier"] == 0.0
    assert p["aggregation_noise_std"] == 0.0 and p["head_noise_std"] == 0.0
    assert hetero_gap_dp_event(p) is None
    snap = snapshot_inputs(city, Record(city), 4, 3, unit)
    h = {t: snap[t].x for t in snap.node_types}
    gen = torch.Generator().manual_seed(5)
    noisy, clean = hop_release(snap, h, 0.0, gen), hop_release(snap, h, 0.0)
    assert all(torch.equal(noisy[r], clean[r]) for r in clean)
    e, pe = forecast_hetero_gap(city, parse_unit("edge:frequents"), math.inf, None, settings, TRAIN, [5], 0, "person")
    assert pe["epsilon"] is None and e.scores.shape == (1, 300) and any("val_loss" in r for r in e.history)


def _auroc(data: HeteroData, unit: str, epsilon: float, seed: int) -> float:
    settings = hetero_gap_settings({"epochs": 30})
    forecast, _ = forecast_hetero_gap(data, parse_unit(unit), epsilon, None, settings, TRAIN, [4, 5, 6], seed, "place")
    return score_forecast(forecast, data)["auroc_true"]


@pytest.mark.parametrize("unit", ["incident", "edge:lives_at"])
def test_large_epsilon_ranks_places_and_tiny_epsilon_does_worse(city: HeteroData, unit: str) -> None:
    """At epsilon 64 the forecast ranks next period's places well above chance; at 0.05 it is worse (3 seeds)."""
    large = np.mean([_auroc(city, unit, 64.0, s) for s in range(3)])
    tiny = np.mean([_auroc(city, unit, 0.05, s) for s in range(3)])
    assert large > 0.6 and tiny < large - 0.05


# --- refusals -----------------------------------------------------------------------------------------------------

def test_settings_defaults_and_refusals() -> None:
    """Defaults overlaid; name/unit/epsilon/delta passed apart; every bad value refused, naming privacy.<key>."""
    out = hetero_gap_settings({"name": "hetero_gap", "unit": "person", "epsilon": 1.0, "delta": None, "hops": 3,
                               "max_degree": {"knows": 5}})
    assert out["hops"] == 3 and out["max_degree"] == {**HETERO_GAP_DEFAULTS["max_degree"], "knows": 5}
    assert hetero_gap_settings({}) == HETERO_GAP_DEFAULTS
    for cfg, field in [({"hops": 0}, "privacy.hops"), ({"hops": 1.5}, "privacy.hops"),
                       ({"max_degree": {"knows": 0}}, "privacy.max_degree.knows"),
                       ({"max_degree": {"involved_in": 2.5}}, "privacy.max_degree.involved_in"),
                       ({"max_degree": {"lives_at": 2}}, "privacy.max_degree.lives_at"),
                       ({"max_degree": 10}, "privacy.max_degree"), ({"max_grad_norm": 0}, "privacy.max_grad_norm"),
                       ({"batch_size": 0}, "privacy.batch_size"), ({"noise": 1}, "privacy.noise")]:
        with pytest.raises(ConfigError) as err:
            hetero_gap_settings(cfg)
        assert err.value.field == field and "\n" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        hetero_gap_settings({"hops": 0, "epochs": -1, "bogus": 1})
    assert {e.field for e in err.value.errors} == {"privacy.hops", "privacy.epochs", "privacy.bogus"}


def test_person_forecasts_refused_under_person_unit(city: HeteroData) -> None:
    """A row per person would reveal who is in the city: refused in one line; other units forecast people."""
    with pytest.raises(ConfigError) as err:
        forecast_hetero_gap(city, parse_unit("person"), 1.0, None, hetero_gap_settings(FAST), TRAIN, [5], 0, "person")
    assert err.value.field == "eval.target" and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        forecast_hetero_gap(city, parse_unit("incident"), 1.0, None, hetero_gap_settings(FAST), TRAIN, [5], 0, "nation")
    with pytest.raises(ConfigError) as err:
        forecast_hetero_gap(city, parse_unit("incident"), 1e-9, None, hetero_gap_settings(FAST), TRAIN, [5], 0,
                            "place")
    assert err.value.field == "privacy.epsilon"
