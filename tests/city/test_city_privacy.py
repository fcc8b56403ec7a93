"""Privacy on the city: units, graph perturbation of one relation, the wiring into city runs, the refusals."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrisk.data.city.world import generate_city
from gnnrisk.errors import ConfigError, ConfigErrors
from gnnrisk.pipeline import execute_experiment, prepare_run
from gnnrisk.privacy.city.mechanisms import build_city_mechanism, relations_read
from gnnrisk.privacy.city.perturb import perturb_relation, relation_cells
from gnnrisk.privacy.city.units import parse_unit
from gnnrisk.privacy.graph_perturbation import flip_probability

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "foundation"))
from foundation_helpers import compose_cfg  # noqa: E402

SMALL = ("data=synthetic_city", "data.num_people=600", "device=cpu", "threads=1")
FREQUENTS, KNOWS = ("person", "frequents", "place"), ("person", "knows", "person")


@pytest.fixture(scope="module")
def city():
    return generate_city({"num_people": 400}, seed=0)


def _refused(*overrides: str) -> dict[str, str]:
    """Field -> message of every refusal of a city run with `overrides`."""
    with pytest.raises(ConfigError) as err:
        prepare_run(compose_cfg(*SMALL, *overrides))
    errors = err.value.errors if isinstance(err.value, ConfigErrors) else [err.value]
    return {e.field: str(e) for e in errors}


# --- units ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [("edge:knows", "edge:knows"), ("person", "person"), ("incident", "incident"),
                                         ("edge:frequents", "edge:frequents")])
def test_units_parse_and_print(value: str, text: str):
    assert str(parse_unit(value)) == text and parse_unit(value).detail


@pytest.mark.parametrize("value, words", [("edge:adjacent", "public geography"), ("edge:involved_in", "incident"),
                                          ("edge:nope", "no relation 'nope'"), ("node", "expected one of"),
                                          (None, "expected one of")])
def test_units_refused_in_one_line(value, words: str):
    with pytest.raises(ConfigError, match=words) as err:
        parse_unit(value)
    assert err.value.field == "privacy.unit" and "\n" not in str(err.value)


# --- graph perturbation of one relation ----------------------------------------------------------------------

def test_edgerand_on_a_bipartite_relation_flips_each_cell_at_its_rate(city):
    """Kept true cells ~ Binomial(E, 1 - p), added cells ~ Binomial(M - E, p), within 4 sd; reverse = flip."""
    eps = 1.0
    cells, total = relation_cells(city, FREQUENTS)
    released, params = perturb_relation(city, FREQUENTS, "edgerand", eps, 10**8, np.random.default_rng(0))
    out, _ = relation_cells(released, FREQUENTS)
    p = flip_probability(eps)
    kept = np.isin(out, cells).sum()
    added = out.size - kept
    assert abs(kept - cells.size * (1 - p)) < 4 * math.sqrt(cells.size * p * (1 - p))
    assert abs(added - (total - cells.size) * p) < 4 * math.sqrt((total - cells.size) * p * (1 - p))
    rev = released["place", "rev_frequents", "person"].edge_index
    assert torch.equal(rev, released[FREQUENTS].edge_index.flip(0)) and params["perturbed_num_edges"] == out.size
    assert city[FREQUENTS].edge_index.size(1) == cells.size  # the true city is untouched


def test_edgerand_on_knows_stays_symmetric_and_leaves_other_relations(city):
    released, _ = perturb_relation(city, KNOWS, "edgerand", 3.0, 10**8, np.random.default_rng(1))
    ei = released[KNOWS].edge_index
    assert set(map(tuple, ei.T.tolist())) == set(map(tuple, ei.flip(0).T.tolist()))
    for rel in city.edge_types:
        if rel != KNOWS:
            assert released[rel].edge_index is city[rel].edge_index


def test_a_neighbouring_cell_is_released_at_the_ratio_epsilon_allows():
    """One (person, place) cell differs: over 4000 releases the cell's presence rates are 1 - p and p."""
    eps = 1.5
    city = generate_city({"num_people": 50, "people_per_place": 10}, seed=3)
    rel = ("person", "lives_at", "place")
    person, place = 0, int(city[rel].edge_index[1][city[rel].edge_index[0] == 0][0])  # person 0's home: present
    width = city["place"].num_nodes
    rng = np.random.default_rng(7)
    hits = sum(int(person * width + place in relation_cells(
        perturb_relation(city, rel, "edgerand", eps, 10**6, rng)[0], rel)[0]) for _ in range(4000))
    p = flip_probability(eps)
    assert abs(hits / 4000 - (1 - p)) < 4 * math.sqrt(p * (1 - p) / 4000)
    assert (1 - p) / p == pytest.approx(math.exp(eps))


def test_lapgraph_releases_its_noisy_count(city):
    released, params = perturb_relation(city, FREQUENTS, "lapgraph", 8.0, 10**8, np.random.default_rng(2))
    out, _ = relation_cells(released, FREQUENTS)
    assert out.size == params["noisy_edge_count"] and abs(out.size - city[FREQUENTS].edge_index.size(1)) < 2000


def test_the_relations_each_forecaster_reads():
    assert relations_read("hetero_sage", "place") >= {"knows", "lives_at", "frequents"}
    assert relations_read("network_exposure", "person") == {"knows"}
    assert relations_read("gconv_gru", "place") == {"adjacent"} and relations_read("retro_hotspot", "place") == set()


def test_the_accountant_of_a_relation_release():
    """The recount by dp_accounting of EdgeRand's event gives the epsilon reported, per relation."""
    from gnnrisk.check.checks import independent_epsilons

    mech = build_city_mechanism({"name": "edgerand", "epsilon": 2.0, "delta": 0.0, "max_edges": 10**7,
                                 "relation": "lives_at", "diagnostics": True})
    recount = independent_epsilons(mech.dp_event({"flip_prob": flip_probability(2.0)}), 0.0)
    assert recount["pld"] == pytest.approx(2.0, rel=1e-3) and recount["pld_relation"] == "replace_one"


# --- city runs ------------------------------------------------------------------------------------------------

def test_a_private_city_run_names_its_unit(tmp_path: Path):
    result = execute_experiment(compose_cfg(*SMALL, "model=network_exposure", "eval.target=person",
                                            "privacy=edgerand", "privacy.epsilon=3"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["privacy_unit"] == "edge:knows" and metrics["epsilon"] == 3.0 and metrics["delta"] == 0.0
    assert metrics["epsilon_covers"] == "graph" and "knows tie" in metrics["privacy_unit_detail"]
    assert metrics["perturbed_num_edges"] > 0 and result.metrics["mechanism"] == "edgerand"


def test_the_release_changes_what_a_tie_reader_scores(tmp_path: Path):
    """network_exposure reads the released ties: its scores move; person_history reads none and is refused."""
    plain = execute_experiment(compose_cfg(*SMALL, "model=network_exposure", "eval.target=person"), tmp_path / "a")
    noisy = execute_experiment(compose_cfg(*SMALL, "model=network_exposure", "eval.target=person",
                                           "privacy=edgerand", "privacy.epsilon=0.5"), tmp_path / "b")
    assert not torch.equal(plain.trained.scores, noisy.trained.scores)


@pytest.mark.parametrize("overrides, field, words", [
    (("model=retro_hotspot", "privacy=edgerand"), "model.name", "reads no knows ties"),
    (("model=person_history", "eval.target=person", "privacy=lapgraph"), "model.name", "pointless"),
    (("model=hetero_sage", "privacy=edgerand", "privacy.relation=adjacent"), "privacy.relation", "public geography"),
    (("model=hetero_sage", "privacy=edgerand", "privacy.relation=occurred_at"), "privacy.relation", "incident"),
    (("model=hetero_sage", "privacy=edgerand", "privacy.relation=roads"), "privacy.relation", "no relation"),
    (("model=hetero_sage", "privacy=gap_ndp"), "privacy.name", "available there"),
    (("model=hetero_sage", "privacy=edgerand", "explain=saliency"), "explain", "true typed links"),
    (("model=hetero_sage", "privacy=edgerand", "privacy.epsilon=-1"), "privacy.epsilon", "(0.0, inf]"),
])
def test_private_city_runs_refused_in_one_line(overrides: tuple[str, ...], field: str, words: str):
    refused = _refused(*overrides)
    assert field in refused and words in refused[field], refused


def test_every_bad_field_of_a_private_city_run_at_once():
    refused = _refused("model=retro_hotspot", "privacy=edgerand", "privacy.relation=adjacent", "eval.origins=0")
    assert {"privacy.relation", "eval.origins"} <= set(refused)


def test_a_homogeneous_graph_refuses_a_relation_and_the_city_mechanism():
    with pytest.raises(ConfigError, match="data=synthetic_city"):
        prepare_run(compose_cfg("data.num_nodes=300", "privacy=edgerand", "privacy.relation=frequents", "device=cpu"))
    with pytest.raises(ConfigError, match="city"):
        prepare_run(compose_cfg("data.num_nodes=300", "privacy=hetero_gap", "device=cpu"))


def test_a_hetero_gap_run_keeps_its_private_curve_apart(tmp_path: Path):
    """Person unit: epsilon spent <= target, the curve on private labels under diagnostics/, forecasts written."""
    execute_experiment(compose_cfg(*SMALL, "model=hetero_sage", "privacy=hetero_gap", "privacy.unit=person",
                                   "privacy.epsilon=4", "privacy.epochs=2", "eval.origins=1"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["privacy_unit"] == "person" and 0 < metrics["epsilon"] <= 4.0
    assert metrics["epsilon_covers"] == "model" and metrics["diagnostics_outside_epsilon"] == "diagnostics"
    assert (tmp_path / "forecast.csv").is_file() and not (tmp_path / "history.csv").exists()


def test_every_bad_hetero_gap_field_at_once():
    refused = _refused("model=hetero_sage", "privacy=hetero_gap", "privacy.unit=node", "privacy.max_degree.knows=0",
                       "+privacy.lags=2")
    assert {"privacy.unit", "privacy.max_degree.knows", "privacy.lags"} <= set(refused), refused
    refused = _refused("model=sepp", "privacy=hetero_gap", "eval.target=person", "privacy.unit=person")
    assert "model.name" in refused
    refused = _refused("model=hetero_sage", "privacy=hetero_gap", "eval.target=person", "privacy.unit=person")
    assert "eval.target" in refused, refused


def test_hetero_gap_in_the_patrol_loop_spends_one_budget(tmp_path: Path):
    """audit=feedback under hetero_gap: the run's epsilon (<= target) covers its forecast and each refit of the
    loop, so the same target adds noise; the loop runs on the private refits and writes its table."""
    base = (*SMALL, "data.periods=8", "model=hetero_sage", "privacy=hetero_gap", "privacy.unit=incident",
            "privacy.epsilon=4", "privacy.epochs=1", "eval.origins=1")
    execute_experiment(compose_cfg(*base, "audit=feedback"), tmp_path / "loop")
    execute_experiment(compose_cfg(*base), tmp_path / "alone")
    loop, alone = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("loop", "alone"))
    assert alone["forecasts_composed"] == 1 and loop["forecasts_composed"] == 1 + (8 - 4)  # warm-up 4: t = 3..6
    assert 0 < loop["epsilon"] <= 4.0 and loop["noise_multiplier"] > alone["noise_multiplier"]
    assert (tmp_path / "loop" / "city_feedback.csv").is_file() and "feedback_hit_rate_mean" in loop


def test_attack_canary_audits_the_runs_unit(tmp_path: Path):
    """EdgeRand on frequents at epsilon 2: the canary audit's eps_lower is named, positive and below the claim."""
    execute_experiment(compose_cfg(*SMALL, "model=hetero_sage", "train.epochs=2", "eval.origins=1", "privacy=edgerand",
                                   "privacy.relation=frequents", "privacy.epsilon=2", "attack=canary",
                                   "attack.canary.num_canaries=400"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["eps_lower_relation"] == "edge:frequents" and metrics["attack_canary_claimed_epsilon"] == 2.0
    assert 0.0 < metrics["eps_lower"] <= 2.0 and metrics["attack_canary_canaries"] == 400


@pytest.mark.parametrize("overrides, field", [
    (("model=hetero_sage", "privacy=edgerand", "attack=lsa"), "attack"),
    (("model=hetero_sage", "attack=canary"), "attack"),
    (("model=hetero_sage", "privacy=edgerand", "attack=canary", "attack.canary.num_canaries=1"),
     "attack.canary.num_canaries"),
    (("model=hetero_sage", "privacy=hetero_gap", "privacy.unit=incident", "eval.target=person", "attack=canary"),
     "eval.target"),
])
def test_city_attacks_refused_in_one_line(overrides: tuple[str, ...], field: str):
    assert field in _refused(*overrides)
