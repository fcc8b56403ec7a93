"""Person-level risk on the city: the baselines by hand, GNN heads on people, the metrics per person, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.models.person_risk import network_exposure, person_baseline_config, person_history
from gnnrisk.train.city_forecast import CityForecast, forecast_city
from gnnrisk.train.hotspot_metrics import next_period_truth, score_forecast, unit_of_incident


@pytest.fixture(scope="module")
def town() -> HeteroData:
    """The default city's size (5,000 people, 100 places, 12 periods): a person's record needs periods to build."""
    return generate_city({"num_people": 5000, "periods": 12}, seed=3)


def test_history_and_exposure_by_hand() -> None:
    """Fading weights 2^(-age / half-life) per person; exposure adds tie_weight times the ties' scores."""
    person = np.array([0, 0, 1, 2])
    time = np.array([10.0, 40.0, 30.0, 50.0])  # the last one is at `now`: not yet seen
    ties = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
    raw = np.array([2 ** (-40 / 20) + 2 ** (-10 / 20), 2 ** (-20 / 20), 0.0])
    hist = person_history(person, time, 3, ties, now=50.0, horizon=30.0, half_life_days=20.0)
    assert np.allclose(hist / hist.sum(), raw / raw.sum())
    # the scale: the recorded involvements of the last 2 half-lives (3 before `now`) per 30 days
    assert np.isclose(hist.sum(), 3 * 30.0 / 40.0)
    expo = network_exposure(person, time, 3, ties, now=50.0, horizon=30.0, half_life_days=20.0, tie_weight=0.5)
    want = raw + 0.5 * np.array([raw[1], raw[0] + raw[2], raw[1]])
    assert np.allclose(expo / expo.sum(), want / want.sum())


def test_truth_per_person_counts_every_involvement(town: HeteroData) -> None:
    """Per person, next period's incidents are those they are involved in; the recorded ones a subset."""
    truth = next_period_truth(town, [5, 6], "person")
    person, inc = unit_of_incident(town, "person"), town["incident"]
    for row, t in enumerate((5, 6)):
        mask = inc.period == t + 1
        want = torch.bincount(person[mask], minlength=town["person"].num_nodes).double()
        assert torch.equal(truth["true"][row], want)
        assert (truth["recorded"][row] <= truth["true"][row]).all()
        assert torch.allclose(truth["rate"][row], town["person"].rate[:, t + 1].double())


@pytest.mark.parametrize("model", ["person_history", "network_exposure"])
def test_person_baselines_beat_a_random_ranking(town: HeteroData, model: str) -> None:
    """Risk concentrates on people with a record (risk effect and social contagion): AUROC above a random score's."""
    origins = [6, 7, 8, 9, 10]
    forecast = forecast_city(town, model, {}, {}, origins, 0, target="person")
    assert forecast.scores.shape == (5, town["person"].num_nodes) and forecast.target == "person"
    ours = score_forecast(forecast, town)
    chance = [score_forecast(CityForecast(torch.rand(5, town["person"].num_nodes,
                                                      generator=torch.Generator().manual_seed(s)),
                                          origins, "random", "person"), town)["auroc_true"] for s in range(20)]
    assert ours["auroc_true"] > np.mean(chance) + 3 * np.std(chance)
    assert 0.0 <= ours["auprc_true"] <= 1.0


def test_a_gnn_scores_people(town: HeteroData) -> None:
    """The GNN's head on people: one finite positive expected count per person and origin, trained per refit."""
    forecast = forecast_city(town, "hetero_sage", {"hidden_channels": 8}, {"epochs": 30, "refit": "once"},
                             [9, 10], 0, target="person")
    assert forecast.scores.shape == (2, town["person"].num_nodes)
    assert torch.isfinite(forecast.scores).all() and (forecast.scores > 0).all()
    assert score_forecast(forecast, town)["auroc_true"] > 0.6


def test_targets_and_models_must_match(town: HeteroData) -> None:
    """A place baseline cannot score people, a person baseline cannot score places, and the target is checked."""
    with pytest.raises(ConfigError, match="model.name.*place forecaster cannot score people"):
        forecast_city(town, "sepp", {}, {}, [5], 0, target="person")
    with pytest.raises(ConfigError, match="model.name.*cannot score places"):
        forecast_city(town, "person_history", {}, {}, [5], 0, target="place")
    with pytest.raises(ConfigError, match="eval.target"):
        forecast_city(town, "hetero_sage", {}, {}, [5], 0, target="incident")
    with pytest.raises(ConfigError, match="model.tie_weight"):
        person_baseline_config("network_exposure", {"tie_weight": -1})
    with pytest.raises(ConfigError, match="model.window_days"):
        person_baseline_config("person_history", {"window_days": 3})


def test_group_shares_by_hand(town: HeteroData) -> None:
    """Flagged shares per group sum to 1; for people they are the flagged people's group shares; true shares are
    the incidents' group shares next period."""
    origins = [9, 10]
    forecast = forecast_city(town, "person_history", {}, {}, origins, 0, target="person")
    out = score_forecast(forecast, town)
    names = list(town.group_names)
    assert abs(sum(out[f"flagged_share_{g}_at_5"] for g in names) - 1) < 1e-9
    assert abs(sum(out[f"true_share_{g}"] for g in names) - 1) < 1e-9
    inc = town["incident"]
    want = np.mean([float((inc.group[inc.period == t + 1] == 1).double().mean()) for t in origins])
    assert np.isclose(out["true_share_minority"], want)
    # a score that flags only minority people flags a minority share of 1
    only = CityForecast(town["person"].group.double().repeat(2, 1), origins, "toy", "person")
    flagged = score_forecast(only, town)["flagged_share_minority_at_5"]
    assert np.isclose(flagged, 1.0)
    assert np.isclose(score_forecast(only, town)["flag_disparity_minority_at_5"], 1.0 - want)
