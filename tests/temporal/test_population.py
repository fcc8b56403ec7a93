"""The evolving population: its contract, its dynamics at the configured rates, and its ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gnnrisk.data import build_dataset
from gnnrisk.data.temporal import alive, snapshot
from gnnrisk.errors import ConfigError
from tests_data_helpers import temporal_cfg

def within(successes: int, trials: int, p: float, level: float = 0.999) -> bool:
    """Whether p lies in the Clopper-Pearson interval of successes/trials."""
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=level)
    return ci.low <= p <= ci.high


@pytest.fixture(scope="module")
def world():
    cfg = temporal_cfg(num_nodes=4000)
    return cfg, build_dataset(cfg, seed=3)


def test_contract_and_tie_intervals(world):
    cfg, d = world
    n, t = cfg.num_nodes, cfg.periods
    assert d.x.shape == (n, t, 16) and d.y.shape == (n, t) and d.y_true.shape == (n, t)
    assert (d.tie_index[0] < d.tie_index[1]).all()
    assert ((d.tie_start >= 0) & (d.tie_start < d.tie_end) & (d.tie_end <= t)).all()
    for period in range(t):
        ties = d.tie_index[:, alive(d, period)]
        keys = ties[0] * n + ties[1]
        assert keys.unique().numel() == keys.numel()  # one row per tie alive in a period
        ei = snapshot(d, period)
        assert ei.size(1) == 2 * keys.numel()
        assert ((ei[0] * n + ei[1]).diff() > 0).all()  # coalesced: sorted, no duplicates
    counts = [int(alive(d, p).sum()) for p in range(t)]
    assert max(counts) == min(counts) == round(n * cfg.mean_degree / 2)  # churn keeps the number of ties


def test_churn_and_recovery_at_their_rates(world):
    cfg, d = world
    t = cfg.periods
    survived = sum(int((alive(d, p - 1) & alive(d, p)).sum()) for p in range(1, t))
    before = sum(int(alive(d, p - 1).sum()) for p in range(1, t))
    assert within(before - survived, before, cfg.dynamics.churn)
    was = d.y_true[:, :-1] == 1
    recovered = int((was & (d.y_true[:, 1:] == 0)).sum())
    assert within(recovered, int(was.sum()), cfg.dynamics.recovery)


def test_transmissions_are_real_contagion(world):
    cfg, d = world
    src, dst, period = d.transmissions
    later = period > 0
    s, v, p = src[later], dst[later], period[later]
    assert (d.y_true[s, p - 1] == 1).all() and (d.y_true[v, p - 1] == 0).all() and (d.y_true[v, p] == 1).all()
    n = cfg.num_nodes
    for q in range(1, cfg.periods):  # each transmitting tie is present in its period
        ties = d.tie_index[:, alive(d, q)]
        keys = set((ties[0] * n + ties[1]).tolist())
        sel = p == q
        lo, hi = torch.minimum(s[sel], v[sel]), torch.maximum(s[sel], v[sel])
        assert set((lo * n + hi).tolist()) <= keys
    # contagion matters: new cases next to a case outnumber new cases elsewhere, per person
    assert later.sum() > 0.3 * int(((d.y_true[:, 1:] == 1) & (d.y_true[:, :-1] == 0)).sum())


def test_detection_rates_per_group(world):
    cfg, d = world
    for g, name in enumerate(cfg.groups):
        positives = (d.group[:, None] == g) & (d.y_true == 1)
        assert within(int(d.y[positives].sum()), int(positives.sum()), cfg.observation.detection_rate[name])


def test_features_drift_with_risk():
    """Consecutive periods' informative features correlate less when risk drifts faster."""
    def lag_corr(drift):
        d = build_dataset(temporal_cfg(num_nodes=3000, **{"dynamics.feature_drift": drift}), seed=0)
        a, b = d.x[:, :-1, 0].flatten().numpy(), d.x[:, 1:, 0].flatten().numpy()
        return np.corrcoef(a, b)[0, 1]
    assert lag_corr(0.0) > lag_corr(0.5) + 0.1


def test_seeded_and_anonymous():
    cfg = temporal_cfg(num_nodes=1000, periods=4)
    a, b, c = build_dataset(cfg, 1), build_dataset(cfg, 1), build_dataset(cfg, 2)
    for key in ("x", "y", "y_true", "tie_index", "tie_start", "tie_end", "transmissions"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    assert not torch.equal(a.y_true, c.y_true)
    # ids are shuffled: node id order says nothing about community
    rho = stats.spearmanr(np.arange(1000), a.community.numpy()).statistic
    assert abs(rho) < 0.15


@pytest.mark.parametrize("key,value", [("periods", 1), ("dynamics.churn", 1.5), ("dynamics.recovery", -0.1),
                                       ("dynamics.onset_rate", 0.0), ("dynamics.closure", 2)])
def test_bad_dynamics_refused(key, value):
    with pytest.raises(ConfigError, match=f"data.{key}"):
        build_dataset(temporal_cfg(num_nodes=200, **{key: value}), seed=0)
