"""Attacks per relation and node type on the city (gnnrisk.privacy.city.attacks, attacks_membership): LinkTeller finds
knows ties through a non-private forecaster and loses them under EdgeRand at a tiny epsilon, link stealing and the
membership scores rank planted cases right, the refit attacked is the run's forecaster, bad settings are refused in
one line before training, and a run writes the metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrisk.attack.scores import auroc
from gnnrisk.data.city.world import generate_city
from gnnrisk.errors import ConfigError, ConfigErrors
from gnnrisk.pipeline import execute_experiment, prepare_run
from gnnrisk.privacy.city.attack_model import CityRun, fit_forecaster
from gnnrisk.privacy.city.attacks import (
    link_stealing,
    relation_pairs,
    run_linkteller,
    run_lsa,
    validate_linkteller,
)
from gnnrisk.privacy.city.attacks_membership import (
    member_split,
    membership_scores,
    mia_metrics,
    validate_mia,
)
from gnnrisk.privacy.city.mechanisms import CityMechanism, build_city_mechanism
from gnnrisk.train.city_forecast import forecast_city

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "foundation"))
from foundation_helpers import compose_cfg

SMALL = ("data=synthetic_city", "data.num_people=300", "device=cpu", "threads=1")
KNOWS, LIVES_AT = ("person", "knows", "person"), ("person", "lives_at", "place")


@pytest.fixture(scope="module")
def city():
    return generate_city({"num_people": 300}, seed=0)


def _run(city, privacy: dict, model: str = "hetero_sage", train: dict | None = None, origins=(6,), seed: int = 0,
         target: str = "person", model_cfg: dict | None = None) -> CityRun:
    return CityRun(city, build_city_mechanism(privacy), model, {"name": model, **(model_cfg or {})},
                   train or {"epochs": 30}, target, list(origins), seed)


def _edgerand(epsilon: float) -> dict:
    return {"name": "edgerand", "epsilon": epsilon, "delta": 0.0, "max_edges": 10**8, "relation": "knows"}


# --- LinkTeller ---------------------------------------------------------------------------------------------------

def test_linkteller_finds_knows_ties_and_edgerand_at_tiny_epsilon_hides_them(city):
    block = {"relation": "knows", "num_pairs": 100, "delta": 0.01, "chunk": 32}
    clear = run_linkteller(block, _run(city, {"name": "none"}))
    noisy = run_linkteller(block, _run(city, _edgerand(0.1)))
    assert clear["attack_linkteller_pairs"] == 200 and clear["attack_linkteller_true_edges"] == 100
    assert clear["attack_linkteller_relation"] == "knows" and clear["attack_linkteller_read"] == "person"
    assert clear["attack_linkteller_auroc"] > 0.8, clear
    assert noisy["attack_linkteller_auroc"] < 0.7 and clear["attack_linkteller_auroc"] - noisy[
        "attack_linkteller_auroc"] > 0.25, (clear, noisy)
    assert clear["attack_linkteller_precision_at_k"] > 0.7 and "eps_lower" not in clear


def test_the_attacked_refit_is_the_runs_forecaster(city):
    """fit_forecaster retrains the run's model for its latest origin: the same forecast as the run's."""
    train = {"epochs": 5}
    for model in ("hetero_sage", "gconv_gru"):
        run = forecast_city(city, model, {"name": model}, train, [5, 6], 3, "person")
        fitted = fit_forecaster(city, model, {"name": model}, train, [5, 6], 3, "person")
        assert torch.allclose(fitted.log_rates([6])[0].exp(), run.scores[-1], rtol=1e-5, atol=1e-7), model


def test_bipartite_pairs_are_true_ties_and_non_ties(city):
    pairs, labels = relation_pairs(city, LIVES_AT, 50, torch.Generator().manual_seed(0), "f")
    ei = city[LIVES_AT].edge_index
    places = int(city["place"].num_nodes)
    tied = torch.isin(pairs[0] * places + pairs[1], ei[0] * places + ei[1])
    assert torch.equal(tied, labels) and int(labels.sum()) == 50 and pairs.size(1) == 100
    assert torch.unique(pairs[0] * places + pairs[1]).numel() == 100


# --- link stealing ------------------------------------------------------------------------------------------------

def test_link_stealing_scores_planted_forecasts():
    """Tied nodes with equal forecast vectors, non-ties with different ones: every distance separates them."""
    g = torch.Generator().manual_seed(0)
    rates = torch.rand(40, 3, generator=g) + 0.1
    rates[1::2] = rates[0::2]  # nodes 2i and 2i + 1 are tied and forecast alike
    ties = torch.stack([torch.arange(0, 40, 2), torch.arange(1, 40, 2)])
    non_ties = torch.stack([torch.arange(0, 40, 2), (torch.arange(0, 40, 2) + 2) % 40])
    labels = torch.cat([torch.ones(20), torch.zeros(20)]).bool()
    out = link_stealing(rates, torch.cat([ties, non_ties], 1), labels, ["euclidean", "cosine", "canberra"])
    assert out["attack_lsa_auroc"] == 1.0 and out["attack_lsa_auroc_euclidean"] == 1.0
    assert out["attack_lsa_best_distance"] in ("euclidean", "cosine", "canberra") and out["attack_lsa_pairs"] == 40


def test_link_stealing_reads_the_runs_forecast(city):
    run = _run(city, {"name": "none"}, model="network_exposure", origins=(8, 9, 10))
    run.forecast = forecast_city(city, "network_exposure", {"name": "network_exposure"}, {}, [8, 9, 10], 0, "person")
    out = run_lsa({"num_pairs": 200, "distances": ["euclidean", "cosine"]}, run)
    assert out["attack_lsa_relation"] == "knows" and out["attack_lsa_pairs"] == 400
    assert 0.0 <= out["attack_lsa_auroc"] <= 1.0 and out["attack_lsa_origins"] == [8, 9, 10]


# --- membership inference ----------------------------------------------------------------------------------------

def test_membership_of_labels_in_an_overfit_forecaster():
    """A wide GNN trained long without early stopping on a busy city: its members' labels are told apart; two halves
    of the non-members (neither trained on) are not."""
    busy = generate_city({"num_people": 200, "crime": {"background_rate": 0.3}}, seed=0)
    members = member_split(torch.ones(200, dtype=torch.bool), torch.Generator().manual_seed(4))
    train = {"epochs": 80, "val_share": 0.0, "lr": 0.03}
    fitted = fit_forecaster(busy, "hetero_sage", {"name": "hetero_sage", "hidden_channels": 64}, train, [7], 0,
                            "person", loss_mask=members)
    scores = membership_scores(*fitted.training_targets())
    y = members.numpy()
    assert auroc(y, scores["deviance"]) > 0.65 and auroc(y, scores["loss"]) > 0.6
    outside = (~members).nonzero().flatten()
    halves = member_split(~members, torch.Generator().manual_seed(1))[outside].numpy()
    assert abs(auroc(halves, scores["deviance"][outside.numpy()]) - 0.5) < 0.15


def test_membership_metrics_on_planted_losses():
    members = torch.arange(100) % 2 == 0
    rng = np.random.default_rng(0)
    planted = {"loss": np.where(members.numpy(), 0.0, -1.0) + 0.01 * rng.standard_normal(100),
               "deviance": rng.standard_normal(100)}
    out = mia_metrics(members, planted, 5)
    assert out["attack_mia_loss_auroc"] == 1.0 and out["attack_mia_loss_advantage"] == 1.0
    assert abs(out["attack_mia_deviance_auroc"] - 0.5) < 0.15
    assert out["attack_mia_attack"] == "loss" and out["attack_mia_auroc"] == 1.0 and out["attack_mia_advantage"] == 1.0


# --- refusals and the run ------------------------------------------------------------------------------------------

def _refused(*overrides: str) -> dict[str, str]:
    """Field -> message of every refusal of a city run with `overrides` (each one line)."""
    with pytest.raises(ConfigError) as err:
        prepare_run(compose_cfg(*SMALL, *overrides))
    errors = err.value.errors if isinstance(err.value, ConfigErrors) else [err.value]
    assert all("\n" not in str(e) for e in errors)
    return {e.field: str(e) for e in errors}


REFUSALS = [
    (("attack=linkteller", "attack.linkteller.relation=roads"), "attack.linkteller.relation", "no such relation"),
    (("attack=linkteller", "attack.linkteller.relation=adjacent"), "attack.linkteller.relation", "public"),
    (("attack=linkteller", "attack.linkteller.relation=knows"), "attack.linkteller.relation", "neither end"),
    (("model=lstm", "eval.target=person", "attack=linkteller"), "attack.linkteller.relation", "reads no knows"),
    (("model=person_history", "eval.target=person", "attack=linkteller"), "model.name", "reads no features"),
    (("eval.target=person", "attack=linkteller", "attack.linkteller.num_pairs=1"), "attack.linkteller.num_pairs",
     "[2, inf]"),
    (("eval.target=person", "attack=linkteller", "attack.linkteller.num_pairs=100000"),
     "attack.linkteller.num_pairs", "at most"),
    (("privacy=hetero_gap", "privacy.unit=edge:lives_at", "attack=linkteller"), "attack", "new release"),
    (("attack=lsa",), "attack", "eval.target=person"),
    (("eval.target=person", "attack=lsa", "attack.lsa.relation=frequents"), "attack.lsa.relation", "both"),
    (("eval.target=person", "attack=lsa", "attack.lsa.num_pairs=1"), "attack.lsa.num_pairs", "[2, inf]"),
    (("model=retro_hotspot", "attack=mia"), "model.name", "trained on nothing"),
    (("privacy=hetero_gap", "privacy.unit=edge:knows", "attack=mia"), "attack", "canary"),
    (("attack=explain_sim",), "attack", "does not run on the city"),
]


@pytest.mark.parametrize("overrides, field, words", REFUSALS, ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSALS)])
def test_bad_attack_settings_are_refused_in_one_line(overrides, field, words):
    refused = _refused("model=hetero_sage", *overrides)
    assert field in refused and words in refused[field], refused


def test_a_mechanism_that_trains_its_own_forecaster_is_refused(city):
    """LinkTeller and MIA retrain the run's forecaster as forecast_city does: not a mechanism's own training."""
    class OwnTraining(CityMechanism):
        name = "own"

        def forecast(self, *args, **kwargs):
            raise AssertionError("not reached")

    for call in (lambda: validate_linkteller({"relation": "knows"}, city, OwnTraining({}), "hetero_sage", "person"),
                 lambda: validate_mia(city, OwnTraining({}), "hetero_sage", "person")):
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.field == "attack" and "inside the mechanism" in str(err.value) and "\n" not in str(err.value)


def test_every_bad_attack_field_is_refused_at_once():
    refused = _refused("model=hetero_sage", "eval.target=person", "attack=[lsa,linkteller]",
                       "attack.lsa.num_pairs=0", "attack.linkteller.delta=0")
    assert {"attack.lsa.num_pairs", "attack.linkteller.delta"} <= set(refused)


def test_a_run_writes_the_attacks_metrics(tmp_path: Path):
    execute_experiment(compose_cfg(*SMALL, "model=hetero_sage", "eval.target=person", "eval.origins=1",
                                   "train.epochs=3", "attack=[lsa,mia,linkteller]", "attack.lsa.num_pairs=100",
                                   "attack.linkteller.num_pairs=50"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["attack_lsa_relation"] == "knows" and metrics["attack_linkteller_relation"] == "knows"
    assert metrics["attack_mia_node_type"] == "person" and metrics["attack_linkteller_pairs"] == 100
    for key in ("attack_lsa_auroc", "attack_linkteller_auroc", "attack_mia_auroc", "attack_mia_advantage"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert "eps_lower" not in metrics and not any(k.endswith("eps_lower") for k in metrics)
