"""Rolling-origin forecasting: the window, the targets, no look-ahead, the run's metrics and files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gnnrisk.data import build_dataset
from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment
from gnnrisk.privacy import build_mechanism
from gnnrisk.train.forecast import IGNORE, validate_window, window_targets
from tests_data_helpers import CONFIGS, temporal_cfg

TRAIN = OmegaConf.create({"epochs": 4, "lr": 0.01, "weight_decay": 0.0, "patience": 10, "monitor": "val_loss",
                          "batch_size": None, "num_neighbors": [10]})


def test_window_takes_the_latest_origins():
    w = validate_window(OmegaConf.create({"horizons": [2, 1], "origins": 3}), 12)
    assert w.horizons == [1, 2] and w.origins == [7, 8, 9] and w.periods_read == 10
    with pytest.raises(ConfigError, match="eval.horizons"):
        validate_window(OmegaConf.create({"horizons": [6], "origins": 1}), 12)
    with pytest.raises(ConfigError, match="eval.origins"):
        validate_window(OmegaConf.create({"horizons": [1], "origins": 11}), 12)
    assert validate_window(OmegaConf.create({"horizons": [1], "origins": 10}), 12).origins[0] == 1


def test_targets_inside_the_window_only():
    y = torch.arange(12).repeat(3, 1)  # y[n, t] = t
    tg = window_targets(y, origin=5, horizons=[1, 3])
    assert tg.shape == (6, 3, 2)
    assert tg[:, 0, 0].tolist() == [1, 2, 3, 4, 5, IGNORE]
    assert tg[:, 0, 1].tolist() == [3, 4, 5, IGNORE, IGNORE, IGNORE]


@pytest.mark.parametrize("model", ["gconv_gru", "lstm", "gcn"])
def test_no_look_ahead(model):
    """A forecast made at origin t is the same whatever happens after t (records, features, ties)."""
    data = build_dataset(temporal_cfg(num_nodes=300, periods=6, num_communities=6), seed=0)
    window = validate_window(OmegaConf.create({"horizons": [1], "origins": 2}), 6)
    mcfg = OmegaConf.load(CONFIGS.parent / "model" / f"{model}.yaml")
    mech = build_mechanism(OmegaConf.create({"name": "none"}))
    base = mech.train_forecaster(data, mcfg, TRAIN, window, seed=0)
    origin = window.origins[0]
    future = data.clone()
    future.y[:, origin + 1:] = 1 - future.y[:, origin + 1:]
    future.x[:, origin + 1:] = torch.randn_like(future.x[:, origin + 1:])
    future.tie_end = torch.where(future.tie_end > origin + 1, torch.full_like(future.tie_end, origin + 1),
                                 future.tie_end)  # every tie ends after the origin
    moved = mech.train_forecaster(future, mcfg, TRAIN, window, seed=0)
    assert torch.allclose(base.probs[(origin, 1)], moved.probs[(origin, 1)], atol=1e-6)
    later = window.origins[1]
    assert not torch.allclose(base.probs[(later, 1)], moved.probs[(later, 1)])


def _cfg(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS.parent), version_base="1.3"):
        return compose("config", overrides=["data=synthetic_temporal", "data.num_nodes=300",
                                            "data.num_communities=6", "data.periods=7", "train.epochs=3",
                                            "device=cpu", "model.hidden_channels=8", *overrides])


def test_run_writes_metrics_per_horizon_and_forecast_table(tmp_path):
    m = run_experiment(_cfg("model=gconv_gru", "eval.horizons=[1,2]", "eval.origins=2"), tmp_path)
    assert m["dataset"] == "synthetic_temporal" and m["num_periods"] == 7
    assert m["horizons"] == [1, 2] and m["forecast_origins"] == [3, 4]
    for key in ("test_auroc", "test_auroc_true", "h1_test_auroc", "h2_test_auroc_true", "delta_eo_true"):
        assert key in m, key
    assert m["test_auroc"] == m["h1_test_auroc"] and m["epsilon"] is None
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["h2_test_auroc"] == pytest.approx(m["h2_test_auroc"])
    table = pd.read_csv(tmp_path / "forecast.csv")
    assert len(table) == 4 and set(table.target_period) == {4, 5, 6}
    assert (tmp_path / "history.csv").exists()


def test_private_run_reports_both_units(tmp_path):
    m = run_experiment(_cfg("model=gconv_gru", "privacy=edgerand", "privacy.epsilon=2", "eval.origins=2"), tmp_path)
    # origins 4, 5 with horizon 1 read periods 0..5: six releases of every tie
    assert m["released_periods"] == 6 and m["epsilon"] == 12.0 and m["epsilon_event"] == 2.0
    assert m["privacy_unit"] == "edge" and m["privacy_unit_event"] == "edge-period"
    assert m["epsilon_covers"] == "graph"
