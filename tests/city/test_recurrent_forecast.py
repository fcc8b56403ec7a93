"""The temporal module's recurrent forecasters on the city: both targets, causal in the record, refusals."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import HeteroData

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.train.city_forecast import forecast_city
from gnnrisk.train.hotspot_metrics import score_forecast

FAST = {"epochs": 30, "refit": "once"}


@pytest.fixture(scope="module")
def town() -> HeteroData:
    """The default city's size: 5,000 people, 100 places, 12 periods."""
    return generate_city(None, seed=1)


@pytest.mark.parametrize("model", ["gconv_gru", "gconv_lstm", "lstm"])
@pytest.mark.parametrize("target", ["place", "person"])
def test_each_recurrent_model_forecasts_each_target(town: HeteroData, model: str, target: str) -> None:
    """A finite positive forecast per unit and origin, a training curve, and a ranking well above chance."""
    forecast = forecast_city(town, model, {"hidden_channels": 8}, FAST, [9, 10], 0, target=target)
    assert forecast.scores.shape == (2, town[target].num_nodes) and forecast.target == target
    assert torch.isfinite(forecast.scores).all() and (forecast.scores > 0).all()
    assert {row["origin"] for row in forecast.history} == {9}  # refit=once: one model, trained before origin 9
    assert score_forecast(forecast, town)["auroc_true"] > 0.6


def test_a_forecast_reads_no_later_record(town: HeteroData) -> None:
    """Un-recording every incident after the origin leaves the forecast at that origin unchanged."""
    first = forecast_city(town, "gconv_gru", {"hidden_channels": 8}, {**FAST, "refit": "origin"}, [8], 0)
    hidden = town.clone()
    hidden["incident"].recorded = town["incident"].recorded & (town["incident"].period <= 8)
    again = forecast_city(hidden, "gconv_gru", {"hidden_channels": 8}, {**FAST, "refit": "origin"}, [8], 0)
    assert torch.equal(first.scores, again.scores)


def test_recurrent_settings_are_checked(town: HeteroData) -> None:
    """An unknown or bad setting, and an origin without an earlier one to train on, are refused in one line."""
    with pytest.raises(ConfigError, match="model.lags"):
        forecast_city(town, "lstm", {"lags": 3}, FAST, [9], 0)
    with pytest.raises(ConfigError, match="model.num_layers"):
        forecast_city(town, "gconv_gru", {"num_layers": 0}, FAST, [9], 0)
    with pytest.raises(ConfigError, match="eval.origins"):
        forecast_city(town, "gconv_gru", {}, FAST, [0], 0)
