"""The crime analysts' place forecasts on a grid: retrospective and prospective hotspots, a grid SEPP.

Each reads only the record up to the forecast time `now` (recorded incidents: grid cell, time in days)
and returns one score per cell (row-major, id = row * side + col), on the scale of an expected
recorded count over the next `horizon` days. The kernels follow open_cp (QuantCrimAtLeeds/PredictCode):

- `retro_hotspot` (open_cp `retrohotspot.RetroHotSpotGrid`): the recorded incidents of a trailing
  window, timestamps otherwise ignored; each cell sums the quartic weight (1 - d^2 / h^2)^2, d <= h,
  of every incident, d the distance between cell centres. open_cp's default is h = 200 m on 150 m
  cells (1.3 cells) with "around two months" of data; we default to h = 2 cells and 60 days.
- `pro_hotspot` (Bowers, Johnson & Pease 2004; open_cp `prohotspot.ProspectiveHotSpot`): weight
  1 / ((1 + dd)(1 + dt)) with dd the grid distance in cells (open_cp's default: diagonals count one,
  the l-infinity norm) and dt = floor(age / time unit); zero once dd >= space_bandwidth or
  dt >= time_bandwidth. open_cp's defaults are one week, 8 weeks and 8 cells of 50 m (400 m);
  our cells hold ~50 people, far coarser, so we default to 3 cells and keep 8 weeks of 7 days.
- `sepp` (open_cp `seppexp`, Mohler et al. 2015): per cell c, intensity
  mu_c + sum_{t_j < t, j in c} theta omega exp(-omega (t - t_j)); 20 EM iterations from open_cp's
  start (theta 0.5, mean delay 1 day; our mu_c starts at half the cell's count rate instead of a
  constant). The M-step is open_cp's `maximisation_corrected` (edge-corrected, Lewis & Mohler) by
  default; `edge_correction: false` gives its plain `maximisation`, which `SEPPTrainer` uses. The
  forecast is the fitted model's exact expected count over the next period, cascades inside the
  period included (the excitation's mean solves a linear ODE), where open_cp reports the intensity at
  one instant.

Every baseline takes optional per-incident weights (`weight`: an incident counts w times; the
feedback audit's inverse-propensity correction). Retro and pro scores are relative risks: we rescale each to total the window's mean recorded count
per `horizon` days, so that every score is read as a count; only their order enters the hit rates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import correlate

from gnnrisk.errors import ConfigError, check_number, model_settings

BASELINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "retro_hotspot": {"window_days": 60.0, "bandwidth": 2.0},
    "pro_hotspot": {"space_bandwidth": 3, "time_bandwidth": 8, "time_unit_days": 7.0},
    "sepp": {"iterations": 20, "theta0": 0.5, "omega0": 1.0, "edge_correction": True},
}


def baseline_config(name: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline's parameters: its defaults overlaid with `cfg`; unknown or bad values refused."""
    out = model_settings(name, BASELINE_DEFAULTS[name], cfg)
    if name == "retro_hotspot":
        check_number("model.window_days", out["window_days"], low=0.0, low_open=True)
        check_number("model.bandwidth", out["bandwidth"], low=0.0, low_open=True)
    elif name == "pro_hotspot":
        check_number("model.space_bandwidth", out["space_bandwidth"], low=1, integer=True)
        check_number("model.time_bandwidth", out["time_bandwidth"], low=1, integer=True)
        check_number("model.time_unit_days", out["time_unit_days"], low=0.0, low_open=True)
    else:
        check_number("model.iterations", out["iterations"], low=1, integer=True)
        check_number("model.theta0", out["theta0"], low=0.0, high=1.0, low_open=True, high_open=True)
        check_number("model.omega0", out["omega0"], low=0.0, low_open=True)
        if not isinstance(out["edge_correction"], bool):
            raise ConfigError("model.edge_correction", out["edge_correction"], "expected true or false")
    return out


def _grid_sum(cell: np.ndarray, side: int, weight: np.ndarray | None = None) -> np.ndarray:
    """Per-cell sums of `weight` (counts without) as a [side, side] grid."""
    return np.bincount(cell, weights=weight, minlength=side * side).astype(np.float64).reshape(side, side)


def _as_counts(score: np.ndarray, total: float) -> np.ndarray:
    """`score` rescaled to sum to `total` (zeros stay zeros)."""
    mass = score.sum()
    return score * (total / mass) if mass > 0 else np.zeros_like(score)


def quartic_kernel(bandwidth: float) -> np.ndarray:
    """The quartic weight (1 - d^2 / h^2)^2 on cell offsets, d the Euclidean offset, zero beyond h."""
    r = int(np.floor(bandwidth))
    d = np.arange(-r, r + 1)
    d2 = d[:, None] ** 2 + d[None, :] ** 2
    return np.where(d2 <= bandwidth ** 2, (1 - d2 / bandwidth ** 2) ** 2, 0.0)


def _weights(time: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """Per-incident weights: `weight`, or ones (every recorded incident counts once)."""
    return np.ones(time.shape, dtype=np.float64) if weight is None else np.asarray(weight, dtype=np.float64)


def retro_hotspot(cell: np.ndarray, time: np.ndarray, side: int, now: float, horizon: float,
                  window_days: float, bandwidth: float, weight: np.ndarray | None = None) -> np.ndarray:
    """Retrospective hotspot scores per cell from the incidents of the `window_days` before `now`."""
    w = _weights(time, weight)
    keep = (time < now) & (time >= now - window_days)
    # mode="constant": an incident near the edge lends weight only to cells inside the city, as in open_cp
    risk = correlate(_grid_sum(cell[keep], side, w[keep]), quartic_kernel(bandwidth), mode="constant").ravel()
    return _as_counts(risk, w[keep].sum() * horizon / window_days)


def pro_hotspot(cell: np.ndarray, time: np.ndarray, side: int, now: float, horizon: float,
                space_bandwidth: int, time_bandwidth: int, time_unit_days: float,
                weight: np.ndarray | None = None) -> np.ndarray:
    """Prospective hotspot scores per cell: weights 1 / (1 + cells away) x 1 / (1 + whole time units ago)."""
    w = _weights(time, weight)
    age = np.floor((now - time) / time_unit_days)
    keep = (time < now) & (age < time_bandwidth)
    # the weight is separable: time-weight each incident, sum per cell, then spread in space
    timed = _grid_sum(cell[keep], side, w[keep] / (1.0 + age[keep]))
    d = np.arange(-(space_bandwidth - 1), space_bandwidth)
    chebyshev = np.maximum(np.abs(d)[:, None], np.abs(d)[None, :])
    risk = correlate(timed, 1.0 / (1.0 + chebyshev), mode="constant").ravel()
    return _as_counts(risk, w[keep].sum() * horizon / (time_bandwidth * time_unit_days))


@dataclass(frozen=True)
class SeppFit:
    """A fitted grid SEPP: background per cell (per day), branching ratio theta, decay omega (per day)."""

    mu: np.ndarray
    theta: float
    omega: float


def _within_cell_pairs(cell: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events sorted by (cell, time) and every (earlier, later) pair inside one cell, as index arrays."""
    order = np.lexsort((time, cell))
    c = cell[order]
    first = np.searchsorted(c, c, side="left")  # position of the cell's first event
    before = np.arange(c.size) - first
    child = np.repeat(np.arange(c.size), before)
    parent = first[child] + np.arange(child.size) - np.repeat(np.cumsum(before) - before, before)
    return order, parent, child


def fit_sepp(cell: np.ndarray, time: np.ndarray, num_cells: int, horizon: float, iterations: int = 20,
             theta0: float = 0.5, omega0: float = 1.0, edge_correction: bool = True,
             weight: np.ndarray | None = None) -> SeppFit:
    """EM for the grid SEPP on the events (cell, time in [0, horizon) days), open_cp's `seppexp`.

    With `weight`, event i stands for w_i events (a Horvitz-Thompson pseudo-likelihood: inverse
    probabilities of being recorded); unit weights are open_cp's EM exactly.
    """
    order, parent, child = _within_cell_pairs(cell, time)
    c, t, w = cell[order], time[order], _weights(time, weight)[order]
    n = t.size
    mu, theta, omega = 0.5 * np.bincount(c, weights=w, minlength=num_cells) / horizon, float(theta0), float(omega0)
    if n == 0:
        return SeppFit(mu, theta, omega)
    dt = t[child] - t[parent]
    left = horizon - t  # time each event had to trigger inside the window
    for _ in range(iterations):  # EM iterations
        trig = w[parent] * theta * omega * np.exp(-omega * dt)  # a parent stands for w of its kind
        total = np.maximum(mu[c] + np.bincount(child, weights=trig, minlength=n), 1e-300)
        p_pair = w[child] * trig / total[child]
        s1, s2 = p_pair.sum(), (p_pair * dt).sum()
        if edge_correction:  # offspring cut off by the window's end (open_cp `maximisation_corrected`)
            lost = np.exp(-omega * left)
            new_theta = s1 / max(w.sum() - (w * lost).sum(), 1e-12)
            s2 = s2 + theta * (w * left * lost).sum()
        else:
            new_theta = s1 / w.sum()
        if s1 > 0 and s2 > 0:
            omega = s1 / s2
        theta = new_theta
        mu = np.bincount(c, weights=w * mu[c] / total, minlength=num_cells) / horizon
    return SeppFit(mu, theta, omega)


def sepp_expected(fit: SeppFit, cell: np.ndarray, time: np.ndarray, start: float, end: float,
                  weight: np.ndarray | None = None) -> np.ndarray:
    """Expected count per cell in [start, end) under `fit`, given the events before `start`.

    The excitation e = lambda - mu has mean obeying de/ds = -omega (1 - theta) e + theta omega mu, so
    E[e](s) = e_inf + (e0 - e_inf) exp(-k (s - start)), k = omega (1 - theta), e_inf = theta mu / (1 - theta).
    """
    theta = min(fit.theta, 0.99)  # a supercritical fit would forecast explosive growth
    keep = time < start
    w = _weights(time, weight)[keep]
    e0 = np.bincount(cell[keep], weights=w * theta * fit.omega * np.exp(-fit.omega * (start - time[keep])),
                     minlength=fit.mu.size)
    e_inf = theta * fit.mu / (1 - theta)
    k = fit.omega * (1 - theta)
    span = end - start
    return (fit.mu + e_inf) * span + (e0 - e_inf) * (-np.expm1(-k * span) / k)


def sepp(cell: np.ndarray, time: np.ndarray, side: int, now: float, horizon: float, iterations: int,
         theta0: float, omega0: float, edge_correction: bool, weight: np.ndarray | None = None) -> np.ndarray:
    """Fit the grid SEPP to the record before `now` and forecast each cell's count in [now, now + horizon)."""
    keep = time < now
    w = None if weight is None else np.asarray(weight, dtype=np.float64)[keep]
    fit = fit_sepp(cell[keep], time[keep], side * side, now, iterations, theta0, omega0, edge_correction, w)
    return sepp_expected(fit, cell[keep], time[keep], now, now + horizon, w)


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "retro_hotspot": retro_hotspot, "pro_hotspot": pro_hotspot, "sepp": sepp}
