"""The patrol feedback loop on the city: the coupled record, the allocations, the corrections, the refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from torch_geometric.data import HeteroData

from gnnrisk.audit import city_feedback as cfb
from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.models import hotspot as hs

SMALL = {"num_people": 1000, "periods": 8}
# Lum & Isaac's premises: equal, flat true rates; a record made mostly where patrols go; patrols aimed at the minority
BIASED = {"num_people": 2000, "periods": 10, "crime": {"hotspot_sd": 0.0, "background_rate": 0.1},
          "patrol": {"group_effect": {"minority": 4.0}}, "observation": {"detection_unpatrolled": 0.1}}


@pytest.fixture(scope="module")
def town() -> HeteroData:
    """A small city: 1000 people, 16 places, 8 periods."""
    return generate_city(SMALL, seed=3)


def _run(data: HeteroData, mode: str, seed: int, model: str = "retro_hotspot", **cfg: object):
    """The loop's table for one mode."""
    s = cfb.validate_city_feedback({"mode": mode, **cfg}, data, model)
    return cfb.simulate_city_feedback(s, data, model, {}, {}, seed)


def test_detection_is_read_back_and_the_formula_is_the_generators(town: HeteroData) -> None:
    """det_p, det_u kept on the city are the config's; the formula gives back every p_record."""
    det_p, det_u = cfb.detection_from_data(town)
    assert list(town.group_names) == ["majority", "minority"]
    assert np.allclose(det_p, [0.8, 0.9]) and np.allclose(det_u, [0.3, 0.3])
    place = cfb._incident_place(town)
    prob = cfb.record_probability(town["place"].patrol.double().numpy()[place], town["incident"].group.numpy(),
                                  det_p, det_u)
    assert np.allclose(prob, town["incident"].p_record.double().numpy(), atol=1e-6)


def test_static_presence_redraws_a_record_of_the_expected_size(town: HeteroData) -> None:
    """Under the static presence the re-drawn record's size is binomial around sum P(recorded)."""
    p = town["incident"].p_record.double().numpy()
    for seed in range(3):  # three independent draws of u
        u, _ = cfb.incident_uniforms(seed, p.size)
        assert abs((u < p).sum() - p.sum()) < 4 * math.sqrt((p * (1 - p)).sum())


def test_the_record_is_a_monotone_deterministic_function_of_presence(town: HeteroData) -> None:
    """Same seed, same table; more presence never un-records an incident; every mode shares the warm-up."""
    a, b = _run(town, "none", seed=5), _run(town, "none", seed=5)
    assert a.equals(b)
    u, _ = cfb.incident_uniforms(5, town["incident"].num_nodes)
    det_p, det_u = cfb.detection_from_data(town)
    g = town["incident"].group.numpy()
    rng = np.random.default_rng(0)
    low = rng.random(g.size)
    high = np.minimum(low + rng.random(g.size) * 0.5, 1.0)
    rec_low = u < cfb.record_probability(low, g, det_p, det_u)
    rec_high = u < cfb.record_probability(high, g, det_p, det_u)
    assert np.all(rec_high | ~rec_low) and rec_high.sum() > rec_low.sum()
    warm = a["phase"] == "warmup"
    for mode in ("random", "ipw", "surprise"):
        assert _run(town, mode, seed=5)[warm]["recorded"].equals(a[warm]["recorded"])


def test_shares_sum_to_one_and_the_budget_holds(town: HeteroData) -> None:
    """Each share sums to 1 over groups; overlaps and hit rates are shares; the warm-up is labelled."""
    names = list(town.group_names)
    for mode in cfb.MODES:
        table = _run(town, mode, seed=1)
        for key in ("patrol_share", "recorded_share", "fed_share", "true_share", "resident_share", "need_share"):
            total = table[[f"{key}_{n}" for n in names]].sum(axis=1, min_count=1)
            if key == "fed_share":  # surprise may feed nothing of a period (NaN shares)
                total = total.dropna()
            assert np.allclose(total, 1.0), (mode, key)
        assert list(table["phase"]) == ["warmup"] * 4 + ["loop"] * 4
        assert table["hit_rate"].between(0, 1).all() and table["overlap"].iloc[1:].between(0, 1).all()


def test_presence_keeps_the_static_mean(town: HeteroData) -> None:
    """high on k places and the solved low elsewhere average to the static coverage."""
    s = cfb.validate_city_feedback({}, town, "sepp")
    places = town["place"].num_nodes
    assert (s.k * s.high + (places - s.k) * s.low) / places == pytest.approx(s.coverage)
    assert s.k == round(0.2 * places) and 0 <= s.low < s.high == 0.9


def test_random_patrols_match_the_resident_share(town: HeteroData) -> None:
    """Random places: the patrol share's mean over many allocations is the resident share (within 4 SE)."""
    s = cfb.validate_city_feedback({"mode": "random"}, town, "retro_hotspot")
    share = town["place"].resident_share.double().numpy()
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(2000):  # independent allocations
        chosen, incl = cfb.allocate(np.zeros(share.shape[0]), s.k, 0, "random", rng)
        assert chosen.sum() == s.k and np.allclose(incl, s.k / share.shape[0])
        pres = np.where(chosen, s.high, s.low) @ share
        draws.append(pres / pres.sum())
    draws = np.array(draws)
    resident = share.sum(0) / share.sum()
    assert np.all(np.abs(draws.mean(0) - resident) < 4 * draws.std(0) / math.sqrt(len(draws)) + 1e-12)
    table = _run(town, "random", seed=2)
    assert np.allclose(table["resident_share_minority"], resident[1])


def test_explore_allocation_and_its_propensities() -> None:
    """explore: the top k - e places always, e more uniformly from the rest, with propensity e / (P - k + e)."""
    rng = np.random.default_rng(0)
    scores = np.arange(10.0)
    chosen, incl = cfb.allocate(scores, 4, 1, "explore", rng)
    assert chosen.sum() == 4 and chosen[[7, 8, 9]].all()
    assert np.allclose(incl[7:], 1.0) and np.allclose(incl[:7], 1 / 7)
    hits = np.mean([cfb.allocate(scores, 4, 1, "ipw", rng)[0][:7] for _ in range(3000)], axis=0)
    assert np.all(np.abs(hits - 1 / 7) < 4 * math.sqrt((1 / 7) * (6 / 7) / 3000))
    top, _ = cfb.allocate(np.array([3.0, 1.0, 3.0, 2.0]), 1, 0, "none", rng)  # a tie at the top: either one
    assert top.sum() == 1 and (top[0] or top[2])


def test_none_on_a_biased_city_over_patrols_the_minority() -> None:
    """Lum & Isaac: flat equal rates, a patrol-made record aimed at the minority; over seeds, `none` keeps the
    minority's patrol share above its true share (mean - 3 SE > 0) and above `random`'s, and ipw narrows it."""
    gaps = []
    for seed in range(6):  # independent cities
        city = generate_city(BIASED, seed)
        row = []
        for mode in ("none", "random", "ipw"):
            loop = _run(city, mode, seed)
            loop = loop[loop["phase"] == "loop"]
            row.append((loop["patrol_share_minority"] - loop["true_share_minority"]).mean())
        gaps.append(row)
    gaps = np.array(gaps)
    se = gaps.std(0, ddof=1) / math.sqrt(len(gaps))
    assert gaps[:, 0].mean() - 3 * se[0] > 0
    diff = gaps[:, :1] - gaps[:, 1:]  # none minus random, none minus ipw, paired by seed
    assert np.all(diff.mean(0) - 3 * diff.std(0, ddof=1) / math.sqrt(len(gaps)) > 0)


def test_ipw_feeds_an_unbiased_count_and_surprise_thins(town: HeteroData) -> None:
    """ipw's weights sum to about the number of incidents; surprise feeds a subset of the record."""
    det_p, det_u = cfb.detection_from_data(town)
    totals = []
    for seed in range(8):  # independent records
        s = cfb.validate_city_feedback({"mode": "ipw"}, town, "retro_hotspot")
        table = cfb.simulate_city_feedback(s, town, "retro_hotspot", {}, {}, seed)
        assert (table["recorded"] <= table["incidents"]).all()
        place, period = cfb._incident_place(town), town["incident"].period.numpy()
        g = town["incident"].group.numpy()
        pres = np.repeat(town["place"].patrol.double().numpy()[:, None], town.num_periods, axis=1)
        prob = cfb.record_probability(pres[place, period], g, det_p, det_u)
        u, v = cfb.incident_uniforms(seed, g.size)
        w = cfb._fed(s, u < prob, prob, pres, np.full(pres.shape, np.nan), place, period, g, v, det_p, det_u)
        totals.append(w.sum())
    n = town["incident"].num_nodes
    worst = 1 / cfb.record_probability(np.zeros(1), np.zeros(1, dtype=int), det_p, det_u)[0]
    assert abs(np.mean(totals) - n) < 4 * math.sqrt(n * (worst - 1) / len(totals))
    table = _run(town, "surprise", seed=0)
    loop = table[table["phase"] == "loop"]
    assert (loop["recorded"] > 0).all()


def test_weighted_baselines_with_unit_weights_are_the_baselines(town: HeteroData) -> None:
    """The ipw forecasters with every weight 1 give the baselines' own scores."""
    rec = town["incident"].recorded.numpy().astype(float)
    for name in hs.BASELINES:
        ours = cfb.weighted_baseline(town, name, {}, rec, origin=5)
        theirs = cfb.forecast_scores(town, rec, 5, name, {}, {}, 0)
        assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-8), name
        doubled = cfb.weighted_baseline(town, name, {}, 2 * rec, origin=5)
        if name != "sepp":  # a kernel sum scales with the weights; the SEPP's likelihood does not simply
            assert np.allclose(doubled, 2 * ours)


@pytest.mark.parametrize("cfg, model, field", [
    ({"mode": "nope"}, "sepp", "audit.mode"),
    ({"warmup": 0}, "sepp", "audit.warmup"),
    ({"warmup": 7}, "sepp", "audit.warmup"),
    ({"warmup": 1}, "hetero_sage", "audit.warmup"),
    ({"budget": 0}, "sepp", "audit.budget"),
    ({"budget": 1.5}, "sepp", "audit.budget"),
    ({"budget": 0.01}, "sepp", "audit.budget"),
    ({"high": 1.2}, "sepp", "audit.high"),
    ({"high": 0.1}, "sepp", "audit.high"),
    ({"explore": 1.0}, "sepp", "audit.explore"),
    ({"mode": "ipw", "explore": 0.0}, "sepp", "audit.explore"),
    ({"mode": "ipw"}, "hetero_sage", "audit.mode"),
    ({}, "logistic", "model.name"),
])
def test_bad_fields_are_refused_in_one_line(town: HeteroData, cfg: dict, model: str, field: str) -> None:
    """Each bad field is refused before anything runs, with a ConfigError naming it."""
    with pytest.raises(ConfigError) as err:
        cfb.validate_city_feedback(cfg, town, model)
    assert err.value.field == field and "\n" not in str(err.value)


def test_two_bad_fields_are_both_reported_and_other_graphs_refused(town: HeteroData) -> None:
    """Refusals are collected; a graph that is not the city is refused."""
    with pytest.raises(ConfigError) as err:
        cfb.validate_city_feedback({"mode": "x", "budget": 2}, town, "sepp")
    assert "audit.mode" in str(err.value) and "audit.budget" in str(err.value)
    with pytest.raises(ConfigError, match="data.name"):
        cfb.validate_city_feedback({}, HeteroData(), "sepp")


def test_run_writes_its_table_and_plot(town: HeteroData, tmp_path: Path) -> None:
    """The entry point writes city_feedback.csv and .png and returns flat float metrics."""
    out = cfb.run_city_feedback({"mode": "explore", "warmup": 3}, town, "sepp", {}, {}, tmp_path, seed=0)
    assert (tmp_path / cfb.TABLE_FILE).is_file() and (tmp_path / cfb.PLOT_FILE).stat().st_size > 1000
    assert all(k.startswith("feedback_") and isinstance(v, float) for k, v in out.items())
    assert 0 <= out["feedback_overlap_final"] <= 1
    assert out["feedback_patrol_disparity_minority_mean"] == pytest.approx(
        out["feedback_patrol_share_minority_mean"] - out["feedback_true_share_minority_mean"])
