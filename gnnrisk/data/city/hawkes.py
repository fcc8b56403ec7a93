"""Simulation of a space-time self-exciting point process (Mohler et al., JASA 2011), by generations.

The conditional intensity (events per day per unit area) is

    lambda(t, x, y) = mu * s(x, y) + sum_{t_j < t} theta * omega * exp(-omega (t - t_j))
                                       * N(x - x_j; sigma_x) * N(y - y_j; sigma_y),

with a background of `mu` events per day spread by the density s (an isotropic Gaussian of sd
`background_sd` centred at the origin, or uniform on a square torus of side `side`) and a normalised
triggering kernel: each event has Poisson(theta) direct offspring, delayed by Exponential(rate omega)
and displaced by independent Gaussian offsets. The cluster (branching) representation is simulated
one generation at a time, so that each step is a handful of vectorised draws and every event keeps
the index of the event that triggered it (-1 for a background event).

Mohler et al. print the triggering kernel without the Gaussian's 1 / (2 pi sigma_x sigma_y); their
Figure A.2 (time marginal theta * omega = 0.02 at t = 0) and the spatial marginals agree only with
the normalised kernel, as open_cp's `sepp_testbed` notebook notes. `MOHLER_2011` is the normalised
reading: mu 5.71, theta 0.2, omega 0.1 (mean delay 10 days), sigma_x 0.01, sigma_y 0.1, background sd 4.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gnnrisk.errors import ConfigError, check_number

Marks = dict[str, np.ndarray]


@dataclass(frozen=True)
class HawkesParams:
    """Parameters of the space-time self-exciting process; exactly one of `background_sd`, `side` is set."""

    mu: float  # background events per day, whole region
    theta: float  # branching ratio: expected number of direct offspring per event
    omega: float  # delay rate per day: mean delay 1 / omega
    sigma_x: float  # sd of an offspring's x offset
    sigma_y: float  # sd of an offspring's y offset
    background_sd: float | None = None  # Gaussian background around the origin (Mohler's: 4.5)
    side: float | None = None  # or: uniform background on the torus [0, side)^2

    def __post_init__(self) -> None:
        check_number("hawkes.mu", self.mu, low=0.0, low_open=True)
        check_number("hawkes.theta", self.theta, low=0.0, high=1.0, high_open=True)
        check_number("hawkes.omega", self.omega, low=0.0, low_open=True)
        check_number("hawkes.sigma_x", self.sigma_x, low=0.0, low_open=True)
        check_number("hawkes.sigma_y", self.sigma_y, low=0.0, low_open=True)
        if (self.background_sd is None) == (self.side is None):
            raise ConfigError("hawkes.background_sd", self.background_sd,
                              "set exactly one of background_sd (Gaussian background) and side (torus)")
        if self.background_sd is not None:
            check_number("hawkes.background_sd", self.background_sd, low=0.0, low_open=True)
        else:
            check_number("hawkes.side", self.side, low=0.0, low_open=True)


MOHLER_2011 = HawkesParams(mu=5.71, theta=0.2, omega=0.1, sigma_x=0.01, sigma_y=0.1, background_sd=4.5)


@dataclass(frozen=True)
class Events:
    """A realisation sorted by time: coordinates and the planted parent of each event (-1 = background)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    parent: np.ndarray

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def triggered_share(self) -> float:
        """Share of events that were triggered by an earlier event."""
        return float((self.parent >= 0).mean()) if len(self) else 0.0


def run_cascade(background: Marks, spawn: Callable[[Marks, np.ndarray], Marks], horizon: float,
                max_generations: int = 10_000) -> Marks:
    """Grow a branching process generation by generation, then sort every mark by time.

    `background` holds the generation-0 marks (a "t" array among them); `spawn(parents, index)`
    receives one generation's marks and their global indices and returns the children's marks,
    a "parent" array of global indices among them. Children at or after `horizon` are dropped (their
    own offspring would be later still). The result has a "parent" mark renumbered to the sorted
    order, -1 for background events.
    """
    gens = [{**background, "parent": np.full(background["t"].shape[0], -1, dtype=np.int64)}]
    start = 0
    for _ in range(max_generations):  # generations, each one vectorised
        current = gens[-1]
        size = current["t"].shape[0]
        if size == 0:
            break
        children = spawn(current, np.arange(start, start + size))
        keep = children["t"] < horizon
        gens.append({k: v[keep] for k, v in children.items()})
        start += size
    merged = {k: np.concatenate([g[k] for g in gens]) for k in gens[0]}
    order = np.argsort(merged["t"], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    parent = merged["parent"][order]
    merged = {k: v[order] for k, v in merged.items()}
    merged["parent"] = np.where(parent >= 0, rank[np.maximum(parent, 0)], -1)
    return merged


def simulate_hawkes(params: HawkesParams, horizon: float, rng: np.random.Generator) -> Events:
    """Simulate the process on [0, horizon) days from an empty history."""
    check_number("hawkes.horizon", horizon, low=0.0, low_open=True)
    p = params
    n0 = int(rng.poisson(p.mu * horizon))
    if p.side is None:
        xy = rng.normal(0.0, p.background_sd, size=(2, n0))
    else:
        xy = rng.uniform(0.0, p.side, size=(2, n0))
    background = {"t": rng.uniform(0.0, horizon, n0), "x": xy[0], "y": xy[1]}

    def spawn(parents: Marks, index: np.ndarray) -> Marks:
        """Poisson(theta) children per parent: exponential delay, Gaussian offset (wrapped on a torus)."""
        k = rng.poisson(p.theta, size=index.size)
        src = np.repeat(np.arange(index.size), k)
        m = src.size
        x = parents["x"][src] + rng.normal(0.0, p.sigma_x, m)
        y = parents["y"][src] + rng.normal(0.0, p.sigma_y, m)
        if p.side is not None:
            x, y = np.mod(x, p.side), np.mod(y, p.side)
        return {"t": parents["t"][src] + rng.exponential(1.0 / p.omega, m), "x": x, "y": y,
                "parent": index[src]}

    out = run_cascade(background, spawn, horizon)
    return Events(t=out["t"], x=out["x"], y=out["y"], parent=out["parent"])
