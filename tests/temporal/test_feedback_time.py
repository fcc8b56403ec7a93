"""The feedback loop across periods: attention from forecasts, records from attention, the corrections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from gnnrisk.audit.feedback import validate
from gnnrisk.audit.feedback_time import simulate_periods
from gnnrisk.data import build_dataset
from gnnrisk.errors import ConfigError
from tests_data_helpers import CONFIGS, temporal_cfg


def audit_cfg(**changes):
    cfg = OmegaConf.load(CONFIGS.parent / "audit" / "feedback.yaml")
    cfg.model = OmegaConf.load(CONFIGS.parent / "model" / "gconv_gru.yaml")
    cfg.update({"learner": "logistic", "rounds": 3, "epochs": 100, "lr": 0.05, **changes})
    return cfg


@pytest.fixture(scope="module")
def population():
    return build_dataset(temporal_cfg(num_nodes=600, periods=6, num_communities=8), seed=0)


def test_one_row_per_deployment_period_with_the_budget(population):
    cfg = audit_cfg(mode="none")
    table, refs = simulate_periods(cfg, validate(cfg, population), population, seed=0)
    assert table.period.tolist() == [3, 4, 5] and table["round"].tolist() == [1, 2, 3]
    assert (table.attended == 60).all()                 # budget 0.1 of 600 nodes, exactly
    assert (table.recorded <= table.attended).all()     # detection_unattended = 0: only attention records
    assert set(refs) >= {"true_share_minority", "population_share_majority", "true_rate_minority"}


def test_random_attention_matches_population_share(population):
    cfg = audit_cfg(mode="random", rounds=4)
    shares = [simulate_periods(cfg, validate(cfg, population), population, seed=s)[0].attention_share_minority
              for s in range(3)]
    pooled = float(np.mean(np.concatenate(shares)))
    minority = float((population.group == 1).float().mean())
    # 12 draws of 60 without replacement: standard error about sqrt(p(1-p)/720)
    assert abs(pooled - minority) < 4 * np.sqrt(minority * (1 - minority) / 720)


def test_biased_record_draws_attention_and_ipw_pulls_it_back():
    """Minority detected at 0.9, majority at 0.3: the naive loop over-attends the minority; random does not."""
    data = build_dataset(temporal_cfg(num_nodes=800, periods=7, num_communities=8,
                                      **{"observation.detection_rate.majority": 0.3}), seed=1)
    mean_share = {}
    for mode in ("none", "random"):
        cfg = audit_cfg(mode=mode, rounds=4)
        mean_share[mode] = np.mean([simulate_periods(cfg, validate(cfg, data), data, seed=s)[0]
                                    .attention_share_minority.mean() for s in range(2)])
    assert mean_share["none"] > mean_share["random"] + 0.05, mean_share


def test_ipw_weights_are_inverse_propensities(population, monkeypatch):
    import gnnrisk.audit.feedback_time as ft
    seen = {}
    original = ft.fit_and_forecast

    def spy(cfg, s, data, record, weight, graphs, period, seed):
        seen[period] = weight.clone()
        return original(cfg, s, data, record, weight, graphs, period, seed)

    monkeypatch.setattr(ft, "fit_and_forecast", spy)
    cfg = audit_cfg(mode="ipw", explore=0.5)
    simulate_periods(cfg, validate(cfg, population), population, seed=0)
    w = seen[5][:, 3]                     # period 3's weights, as the learner of period 5 sees them
    assert torch.equal(seen[5][:, :3], torch.ones(600, 3))      # passive periods weigh 1
    attended = w > 0
    assert int(attended.sum()) == 60 and bool((w[attended] >= 1).all())
    # propensity >= explore * budget / N for every node, so no weight exceeds its inverse
    assert float(w.max()) <= 1 / (0.5 * 60 / 600) + 1e-4


def test_too_many_rounds_refused(population):
    with pytest.raises(ConfigError, match="audit.rounds"):
        validate(audit_cfg(rounds=5), population)
