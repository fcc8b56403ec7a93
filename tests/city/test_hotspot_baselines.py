"""The analysts' baselines: their kernels by hand, the SEPP's EM and forecast, and that they beat chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.models import hotspot as hs
from gnnrisk.train.city_forecast import CityForecast, forecast_city
from gnnrisk.train.hotspot_metrics import score_forecast


def test_retro_hotspot_kernel() -> None:
    """One incident in the centre of a 5 x 5 grid: quartic weights 1, 9/16, 1/4 and 0 at distance 2."""
    out = hs.retro_hotspot(np.array([12]), np.array([50.0]), 5, now=60.0, horizon=30.0, window_days=60.0,
                           bandwidth=2.0).reshape(5, 5)
    assert out.sum() == pytest.approx(0.5)  # one incident in 60 days, read per 30 days
    rel = out / out[2, 2]
    assert rel[2, 3] == pytest.approx(9 / 16) and rel[1, 1] == pytest.approx(1 / 4) and rel[2, 4] == 0
    # outside the trailing window, or not yet happened: ignored
    assert hs.retro_hotspot(np.array([12, 3]), np.array([-1.0, 60.0]), 5, 60.0, 30.0, 60.0, 2.0).sum() == 0


def test_pro_hotspot_kernel() -> None:
    """Weights 1 / (1 + cells away, diagonals one) x 1 / (1 + whole weeks ago), zero at the bandwidths."""
    out = hs.pro_hotspot(np.array([24]), np.array([90.0]), 7, now=100.0, horizon=30.0, space_bandwidth=3,
                         time_bandwidth=8, time_unit_days=7.0).reshape(7, 7)
    rel = out / out[3, 3]
    assert rel[2, 2] == pytest.approx(1 / 2) and rel[1, 5] == pytest.approx(1 / 3) and rel[0, 3] == 0
    # the time weight: an incident 10 days old (1 whole week) weighs half one 3 days old (0 weeks)
    two = hs.pro_hotspot(np.array([24, 0]), np.array([90.0, 97.0]), 7, 100.0, 30.0, 3, 8, 7.0)
    assert two[24] / two[0] == pytest.approx(1 / 2)  # 3 cells apart: neither reaches the other
    # older than the time bandwidth: ignored
    assert hs.pro_hotspot(np.array([24]), np.array([40.0]), 7, 100.0, 30.0, 3, 8, 7.0).sum() == 0


def test_within_cell_pairs() -> None:
    """Every (earlier, later) pair inside a cell, and no other."""
    cell = np.array([2, 0, 2, 2, 0, 1])
    time = np.array([5.0, 1.0, 1.0, 3.0, 2.0, 0.0])
    order, parent, child = hs._within_cell_pairs(cell, time)
    pairs = {(int(order[p]), int(order[c])) for p, c in zip(parent, child)}
    assert pairs == {(1, 4), (2, 3), (2, 0), (3, 0)}


def _simulate_grid_hawkes(mu: np.ndarray, theta: float, omega: float, horizon: float,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell Hawkes with exponential triggering, by generations (offspring stay in their parent's cell)."""
    n0 = rng.poisson(mu * horizon)
    cell = np.repeat(np.arange(mu.size), n0)
    time = rng.uniform(0, horizon, cell.size)
    cells, times = [cell], [time]
    while cell.size:  # generations
        k = rng.poisson(theta, cell.size)
        cell = np.repeat(cell, k)
        time = np.repeat(time, k) + rng.exponential(1 / omega, cell.size)
        keep = time < horizon
        cell, time = cell[keep], time[keep]
        cells.append(cell)
        times.append(time)
    return np.concatenate(cells), np.concatenate(times)


def test_sepp_em_recovers_its_parameters() -> None:
    """EM on a simulated grid SEPP finds theta, omega and the backgrounds."""
    rng = np.random.default_rng(1)
    mu = rng.uniform(0.02, 0.1, 100)
    cell, time = _simulate_grid_hawkes(mu, 0.4, 0.2, 2000.0, rng)
    fit = hs.fit_sepp(cell, time, 100, 2000.0, iterations=100)
    assert fit.theta == pytest.approx(0.4, abs=0.03) and fit.omega == pytest.approx(0.2, rel=0.1)
    assert np.corrcoef(fit.mu, mu)[0, 1] > 0.9 and fit.mu.sum() == pytest.approx(mu.sum(), rel=0.1)
    plain = hs.fit_sepp(cell, time, 100, 2000.0, edge_correction=False)  # open_cp's SEPPTrainer: 20 iterations
    assert plain.theta == pytest.approx(0.4, abs=0.1) and plain.omega == pytest.approx(0.2, rel=0.5)
    empty = hs.fit_sepp(np.array([], dtype=np.int64), np.array([]), 4, 10.0)
    assert np.all(empty.mu == 0)


def test_sepp_expected_count_solves_the_mean_ode() -> None:
    """The closed form matches a fine Euler integration of the excitation's mean."""
    fit = hs.SeppFit(mu=np.array([0.1, 0.0]), theta=0.5, omega=0.2)
    got = hs.sepp_expected(fit, np.array([0, 0]), np.array([0.0, 3.0]), 5.0, 35.0)
    e = 0.5 * 0.2 * (np.exp(-0.2 * 5) + np.exp(-0.2 * 2))
    step, total = 1e-4, 0.0
    for _ in range(int(30 / step)):  # Euler steps of a reference solution, test only
        total += (0.1 + e) * step
        e += (-0.2 * 0.5 * e + 0.5 * 0.2 * 0.1) * step
    assert got[0] == pytest.approx(total, rel=1e-3) and got[1] == 0
    assert hs.sepp_expected(hs.SeppFit(np.array([0.1]), 0.0, 1.0), np.array([0]), np.array([1.0]), 2.0, 12.0)[0] \
        == pytest.approx(1.0)


@pytest.fixture(scope="module")
def town() -> HeteroData:
    """A small city of 196 places."""
    return generate_city({"num_people": 2000, "people_per_place": 10, "periods": 8}, seed=0)


@pytest.mark.parametrize("name", ["retro_hotspot", "pro_hotspot", "sepp"])
def test_baselines_beat_chance_against_the_truth(town: HeteroData, name: str) -> None:
    """Each baseline ranks places by the truth (all incidents, the true rate) far better than a random forecast."""
    origins = [4, 5, 6]
    noise = torch.rand(len(origins), town["place"].num_nodes, generator=torch.Generator().manual_seed(0))
    chance = score_forecast(CityForecast(noise, origins, "random"), town, [10])
    forecast = forecast_city(town, name, {}, {}, origins, seed=0)
    assert forecast.scores.shape == (3, 196) and forecast.history == []
    assert torch.all(forecast.scores >= 0)
    got = score_forecast(forecast, town, [10])
    assert got["hit_rate_true_at_10"] > 0.18 > chance["hit_rate_true_at_10"]
    assert got["auroc_true"] > 0.62 > chance["auroc_true"]
    assert got["spearman_true_rate"] > 0.5 > chance["spearman_true_rate"]


def test_bad_baseline_settings_are_refused(town: HeteroData) -> None:
    """An unknown or out-of-range setting names its field."""
    for cfg, field in (({"bandwidth": 0}, "model.bandwidth"), ({"radius": 2}, "model.radius")):
        with pytest.raises(ConfigError) as err:
            forecast_city(town, "retro_hotspot", cfg, {}, [3], seed=0)
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:
        forecast_city(town, "sepp", {"edge_correction": "yes"}, {}, [3], seed=0)
    assert err.value.field == "model.edge_correction"
