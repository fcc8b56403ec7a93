"""The self-exciting process: the simulator follows its law, and EM recovers Mohler et al.'s (2011) parameters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gnnrisk.data.city.em import candidate_pairs, fit_hawkes, truth_values
from gnnrisk.data.city.hawkes import (
    MOHLER_2011,
    Events,
    HawkesParams,
    run_cascade,
    simulate_hawkes,
)
from gnnrisk.errors import ConfigError

HORIZON = 1000.0  # days: about 7,100 events at Mohler's settings


def _z(observed: float, expected: float, sd: float) -> float:
    """Standardised deviation."""
    return (observed - expected) / sd


def test_simulation_follows_its_law() -> None:
    """Background count, delays, offsets and the parent links match the parameters they were drawn from."""
    p = MOHLER_2011
    ev = simulate_hawkes(p, 4000.0, np.random.default_rng(0))
    assert np.all(np.diff(ev.t) >= 0) and ev.t.min() >= 0 and ev.t.max() < 4000.0
    bg = ev.parent < 0
    assert abs(_z(bg.sum(), p.mu * 4000, np.sqrt(p.mu * 4000))) < 4
    child = np.flatnonzero(~bg)
    par = ev.parent[child]
    assert np.all(par < child) and np.all(ev.t[par] <= ev.t[child])
    delay = ev.t[child] - ev.t[par]
    assert abs(_z(delay.mean(), 1 / p.omega, (1 / p.omega) / np.sqrt(child.size))) < 4  # mild horizon cut
    for offset, sd in ((ev.x[child] - ev.x[par], p.sigma_x), (ev.y[child] - ev.y[par], p.sigma_y)):
        assert abs(offset.std() / sd - 1) < 4 * np.sqrt(0.5 / child.size)
    assert abs(ev.x[bg].std() / p.background_sd - 1) < 0.02
    # direct offspring per event: Poisson(theta), so mean theta among events early enough to have them all
    early = ev.t < 3000.0
    kids = np.bincount(par, minlength=len(ev))[early]
    assert abs(_z(kids.mean(), p.theta, np.sqrt(p.theta / early.sum()))) < 4


def test_torus_background_wraps() -> None:
    """With `side`, background and offspring stay on [0, side)^2."""
    p = HawkesParams(mu=2.0, theta=0.5, omega=0.5, sigma_x=0.3, sigma_y=0.3, side=1.0)
    ev = simulate_hawkes(p, 500.0, np.random.default_rng(1))
    assert ev.x.min() >= 0 and ev.x.max() < 1 and ev.y.min() >= 0 and ev.y.max() < 1
    assert 0.4 < ev.triggered_share < 0.6


def test_run_cascade_renumbers_parents_after_sorting() -> None:
    """Parents point at the same events after the time sort."""
    bg = {"t": np.array([5.0, 1.0]), "tag": np.array([10, 20])}

    def spawn(parents: dict, index: np.ndarray) -> dict:
        keep = parents["tag"] < 100  # each first-generation event has one child, at t - 0.5 + 3
        return {"t": parents["t"][keep] + 2.5, "tag": parents["tag"][keep] * 10, "parent": index[keep]}

    out = run_cascade(bg, spawn, horizon=100.0)
    assert out["t"].tolist() == [1.0, 3.5, 5.0, 7.5]
    assert out["tag"].tolist() == [20, 200, 10, 100]
    assert out["parent"].tolist() == [-1, 0, -1, 2]


def test_candidate_pairs_match_brute_force() -> None:
    """The vectorised window holds exactly the pairs a double loop finds."""
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 50, 300))
    ev = Events(t=t, x=rng.uniform(0, 3, 300), y=rng.uniform(0, 3, 300), parent=np.full(300, -1))
    pairs = candidate_pairs(ev, max_lag=5.0, max_distance=1.0, side=3.0)
    dt = t[:, None] - t[None, :]
    dx = (ev.x[:, None] - ev.x[None, :] + 1.5) % 3 - 1.5
    dy = (ev.y[:, None] - ev.y[None, :] + 1.5) % 3 - 1.5
    i, j = np.nonzero(np.tril(np.ones((300, 300), bool), -1) & (dt <= 5.0) & (dx ** 2 + dy ** 2 <= 1.0))
    assert pairs.child.tolist() == i.tolist() and pairs.parent.tolist() == j.tolist()
    assert np.allclose(pairs.dx, dx[i, j]) and np.allclose(pairs.dt, dt[i, j])


def test_em_recovers_mohler_parameters() -> None:
    """Every true parameter is inside its 95% interval; wrong omegas and thetas are not; parents are found."""
    ev = simulate_hawkes(MOHLER_2011, HORIZON, np.random.default_rng(0))
    fit = fit_hawkes(ev, HORIZON, max_distance=1.0)
    assert fit.converged and fit.cutoff_ok
    assert all(fit.covers(MOHLER_2011).values()), (fit.estimate, fit.interval)
    for wrong in (dataclasses.replace(MOHLER_2011, omega=0.2), dataclasses.replace(MOHLER_2011, omega=0.05),
                  dataclasses.replace(MOHLER_2011, theta=0.25), dataclasses.replace(MOHLER_2011, sigma_y=0.01)):
        assert not all(fit.covers(wrong).values())
    assert abs(fit.triggered_share - ev.triggered_share) < 0.01
    rec = fit.parent_recovery(ev.parent)
    assert rec["accuracy"] > 0.93 and rec["posterior_mass"] > 0.9 and rec["accuracy_triggered"] > 0.8


def test_interval_coverage_over_seeds() -> None:
    """Over 20 replicate worlds the 95% intervals cover about 95% and the z-scores have sd about 1.

    Intervals too narrow (coverage < 0.85 of 120) or too wide (z sd < 0.75) fail; under calibrated
    intervals either happens with probability below 1e-4.
    """
    truth = truth_values(MOHLER_2011)
    covered, z = [], []
    for seed in range(20):
        ev = simulate_hawkes(MOHLER_2011, HORIZON, np.random.default_rng(100 + seed))
        fit = fit_hawkes(ev, HORIZON, max_distance=1.0)
        for k, c in fit.covers(MOHLER_2011).items():
            covered.append(c)
            z.append((fit.estimate[k] - truth[k]) / fit.se[k])
    assert np.mean(covered) >= 0.85
    assert 0.75 < np.std(z, ddof=1) < 1.3 and abs(np.mean(z)) < 0.35


def test_spatial_pruning_changes_nothing() -> None:
    """Pruning pairs beyond 10 spreads gives the estimates of the unpruned fit (within 0.1 se)."""
    ev = simulate_hawkes(MOHLER_2011, 300.0, np.random.default_rng(3))
    full = fit_hawkes(ev, 300.0)
    pruned = fit_hawkes(ev, 300.0, max_distance=1.0)
    assert full.pairs.child.size > 20 * pruned.pairs.child.size
    for k in full.estimate:
        assert abs(full.estimate[k] - pruned.estimate[k]) < 0.1 * full.se[k], k


def test_torus_isotropic_fit() -> None:
    """The uniform-background, isotropic variant recovers its own parameters."""
    p = HawkesParams(mu=3.0, theta=0.5, omega=0.5, sigma_x=0.05, sigma_y=0.05, side=10.0)
    ev = simulate_hawkes(p, 1000.0, np.random.default_rng(4))
    fit = fit_hawkes(ev, 1000.0, side=10.0, max_lag=30.0, max_distance=1.0, isotropic=True)
    assert set(fit.estimate) == {"mu", "theta", "omega", "sigma"}
    assert all(fit.covers(p).values()), (fit.estimate, fit.interval)


@pytest.mark.parametrize("field, kwargs", [
    ("hawkes.theta", {"theta": 1.0}),
    ("hawkes.omega", {"omega": 0.0}),
    ("hawkes.background_sd", {"side": 2.0}),
])
def test_bad_parameters_are_refused(field: str, kwargs: dict) -> None:
    """One-line errors name the parameter."""
    base = {"mu": 5.71, "theta": 0.2, "omega": 0.1, "sigma_x": 0.01, "sigma_y": 0.1, "background_sd": 4.5}
    with pytest.raises(ConfigError) as err:
        HawkesParams(**{**base, **kwargs})
    assert str(err.value).startswith(field + "=") and "\n" not in str(err.value)
