"""Parametric EM (stochastic declustering) for the space-time self-exciting process of `hawkes`.

Veen & Schoenberg (2008) and Mohler et al. (2011): the E-step gives each event the posterior
probability that it is a background event or the offspring of each earlier event; the M-step
maximises the expected complete-data log-likelihood, here in closed form except omega (a 1-D
profile). The M-step keeps the exact compensator, theta * sum_j (1 - exp(-omega L_j)) with
L_j = min(T - t_j, max_lag), so that the offspring that the window [0, T) cuts off do not bias theta
and omega downwards.

Candidate (parent, child) pairs are restricted to lags up to `max_lag` (and optionally spatial offsets
up to `max_distance`) and built once, vectorised, in chunks; every EM iteration is then a pass of
numpy over the pairs. The time cutoff is part of the fitted model (the delay density is truncated at
`max_lag`), so it costs no bias beyond exp(-omega * max_lag); a spatial cutoff is a pruning that
is harmless while it is well beyond the spreads (`HawkesFit.cutoff_ok` checks 6 sd).

Intervals are Wald intervals on the log scale from the Fisher information estimated by
sum_i grad log lambda_i grad log lambda_i^T at the MLE (Ogata 1978; Rathbun 1996): for a point
process the expected information is E sum_i (grad lambda_i / lambda_i)(...)^T, so this sum needs no
second derivatives and no simulation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from gnnrisk.data.city.hawkes import Events, HawkesParams, simulate_hawkes
from gnnrisk.errors import check_number

PAIR_CHUNK = 20_000_000  # candidate pairs examined at once before the spatial pruning


@dataclass(frozen=True)
class Pairs:
    """Candidate (parent j, child i) pairs, j < i, ordered by child then parent, with their offsets."""

    child: np.ndarray
    parent: np.ndarray
    dt: np.ndarray
    dx: np.ndarray
    dy: np.ndarray


def candidate_pairs(events: Events, max_lag: float, max_distance: float | None = None,
                    side: float | None = None) -> Pairs:
    """All pairs with 0 <= t_i - t_j <= max_lag (and |offset| <= max_distance), offsets wrapped on a torus."""
    t, n = events.t, len(events)
    lo = np.searchsorted(t, t - max_lag, side="left")
    counts = np.arange(n) - lo  # earlier events inside the lag window of each child
    cum = np.concatenate([[0], np.cumsum(counts)])
    bounds = np.unique(np.concatenate([[0], np.searchsorted(cum, np.arange(PAIR_CHUNK, cum[-1], PAIR_CHUNK)), [n]]))
    parts = []
    for a, b in itertools.pairwise(bounds):  # chunks of children, each vectorised
        c = counts[a:b]
        child = np.repeat(np.arange(a, b), c)
        within = np.arange(child.size) - np.repeat(cum[a:b] - cum[a], c)
        parent = np.repeat(lo[a:b], c) + within
        dx = events.x[child] - events.x[parent]
        dy = events.y[child] - events.y[parent]
        if side is not None:
            dx = (dx + side / 2) % side - side / 2
            dy = (dy + side / 2) % side - side / 2
        if max_distance is not None:
            keep = dx * dx + dy * dy <= max_distance ** 2
            child, parent, dx, dy = child[keep], parent[keep], dx[keep], dy[keep]
        parts.append((child, parent, t[child] - t[parent], dx, dy))
    cols = [np.concatenate([p[k] for p in parts]) for k in range(5)]
    return Pairs(*cols)


@dataclass
class HawkesFit:
    """Estimates, standard errors and intervals, with the posterior that declusters the events."""

    estimate: dict[str, float]
    se: dict[str, float]
    interval: dict[str, tuple[float, float]]
    level: float
    loglik: float
    iterations: int
    converged: bool
    triggered_share: float  # posterior expected share of triggered events, sum_ij p_ij / N
    p_background: np.ndarray  # posterior probability that each event is a background event
    pairs: Pairs = field(repr=False)
    p_pairs: np.ndarray = field(repr=False)  # posterior probability of each candidate pair
    max_distance: float | None = None

    @property
    def cutoff_ok(self) -> bool:
        """True when the spatial pruning (if any) lies beyond 6 fitted spreads."""
        if self.max_distance is None:
            return True
        spread = max(v for k, v in self.estimate.items() if k.startswith("sigma"))
        return self.max_distance >= 6 * spread

    def covers(self, truth: HawkesParams) -> dict[str, bool]:
        """Whether each true parameter lies inside its interval."""
        values = truth_values(truth)
        return {k: lo <= values[k] <= hi for k, (lo, hi) in self.interval.items()}

    def parent_hat(self) -> np.ndarray:
        """The most probable parent of each event (-1 = background)."""
        n = self.p_background.shape[0]
        best = np.full(n, -1, dtype=np.int64)
        if self.p_pairs.size:
            order = np.lexsort((self.p_pairs, self.pairs.child))  # by child, then probability
            last = np.concatenate([self.pairs.child[order][1:] != self.pairs.child[order][:-1], [True]])
            top = order[last]
            wins = self.p_pairs[top] > self.p_background[self.pairs.child[top]]
            best[self.pairs.child[top][wins]] = self.pairs.parent[top][wins]
        return best

    def parent_recovery(self, parent: np.ndarray) -> dict[str, float]:
        """Agreement with the planted parents: argmax accuracy and mean posterior mass on the true parent."""
        n = parent.shape[0]
        mass = np.where(parent < 0, self.p_background, 0.0)
        keys = self.pairs.child * n + self.pairs.parent  # sorted: child-major, parent ascending
        want = np.flatnonzero(parent >= 0)
        if want.size and keys.size:
            k = want * n + parent[want]
            pos = np.minimum(np.searchsorted(keys, k), keys.size - 1)
            hit = keys[pos] == k
            mass[want[hit]] = self.p_pairs[pos[hit]]
        hat = self.parent_hat()
        trig = parent >= 0
        return {"accuracy": float((hat == parent).mean()), "posterior_mass": float(mass.mean()),
                "accuracy_triggered": float((hat[trig] == parent[trig]).mean()) if trig.any() else float("nan")}


def truth_values(p: HawkesParams) -> dict[str, float]:
    """The parameter values under the names the fit reports (sigma = sigma_x for an isotropic fit)."""
    out = {"mu": p.mu, "theta": p.theta, "omega": p.omega, "sigma_x": p.sigma_x, "sigma_y": p.sigma_y,
           "sigma": p.sigma_x}
    if p.background_sd is not None:
        out["background_sd"] = p.background_sd
    return out


def _best_omega(S: float, D: float, L: np.ndarray, omega: float) -> float:
    """argmax_w S log w - w D - S log sum_j (1 - exp(-w L_j)): the profile over omega with theta = S / A(w)."""
    def neg(log_w: float) -> float:
        w = np.exp(log_w)
        return -(S * log_w - w * D - S * np.log(-np.expm1(-w * L).sum()))

    res = minimize_scalar(neg, bounds=(np.log(omega) - 8, np.log(omega) + 8), method="bounded",
                          options={"xatol": 1e-10})
    return float(np.exp(res.x))


def fit_hawkes(events: Events, horizon: float, *, side: float | None = None, max_lag: float = 100.0,
               max_distance: float | None = None, isotropic: bool = False, level: float = 0.95,
               tol: float = 1e-8, max_iter: int = 2000) -> HawkesFit:
    """Fit mu, theta, omega, the offspring spread(s) and (Gaussian background) its sd by EM, with intervals.

    `side` None fits a Gaussian background centred at the origin (sd estimated); a number fits a
    uniform background on the torus [0, side)^2, as `simulate_hawkes` draws them.
    """
    check_number("em.horizon", horizon, low=0.0, low_open=True)
    check_number("em.max_lag", max_lag, low=0.0, low_open=True)
    check_number("em.level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    n = len(events)
    if n < 2:
        raise ValueError("fit_hawkes needs at least two events")
    pairs = candidate_pairs(events, max_lag, max_distance, side)
    child, dt, dx2, dy2 = pairs.child, pairs.dt, pairs.dx ** 2, pairs.dy ** 2
    r2 = events.x ** 2 + events.y ** 2
    L = np.minimum(horizon - events.t, max_lag)
    gaussian = side is None
    # start: half the events background, spreads a tenth of the pruning radius (or 1), lag scale a tenth of max_lag
    spread0 = (max_distance / 10) if max_distance is not None else 1.0
    th = {"mu": n / (2 * horizon), "theta": 0.5, "omega": 10.0 / max_lag, "sx": spread0, "sy": spread0,
          "tau": float(np.sqrt(r2.mean() / 2)) if gaussian else 0.0}

    def terms(th: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Background intensity at each event, triggering at each pair, and the total intensity."""
        if gaussian:
            b = th["mu"] * np.exp(-r2 / (2 * th["tau"] ** 2)) / (2 * np.pi * th["tau"] ** 2)
        else:
            b = np.full(n, th["mu"] / side ** 2)
        g = (th["theta"] * th["omega"] * np.exp(-th["omega"] * dt - dx2 / (2 * th["sx"] ** 2)
                                                - dy2 / (2 * th["sy"] ** 2)) / (2 * np.pi * th["sx"] * th["sy"]))
        return b, g, b + np.bincount(child, weights=g, minlength=n)

    loglik, converged, it = -np.inf, False, 0
    for it in range(1, max_iter + 1):  # EM iterations; each one vectorised over events and pairs
        b, g, lam = terms(th)
        loglik = float(np.log(lam).sum() - th["mu"] * horizon + th["theta"] * np.expm1(-th["omega"] * L).sum())
        pb, pg = b / lam, g / lam[child]
        S, B = float(pg.sum()), float(pb.sum())
        new = dict(th, mu=B / horizon)
        if gaussian:
            new["tau"] = float(np.sqrt((pb * r2).sum() / (2 * B)))
        if S > 0:
            new["omega"] = _best_omega(S, float((pg * dt).sum()), L, th["omega"])
            new["theta"] = S / float(-np.expm1(-new["omega"] * L).sum())
            if isotropic:
                new["sx"] = new["sy"] = float(np.sqrt((pg * (dx2 + dy2)).sum() / (2 * S)))
            else:
                new["sx"], new["sy"] = float(np.sqrt((pg * dx2).sum() / S)), float(np.sqrt((pg * dy2).sum() / S))
        else:
            new["theta"] = 0.0
        change = max(abs(new[k] - th[k]) / max(abs(th[k]), 1e-300) for k in th if th[k] != 0 or new[k] != 0)
        th = new
        if change < tol:
            converged = True
            break

    b, g, lam = terms(th)
    pb, pg = b / lam, g / lam[child]
    # score of log lambda_i with respect to the log parameters
    cols = {"mu": b, "theta": np.bincount(child, weights=g, minlength=n),
            "omega": np.bincount(child, weights=g * (1 - th["omega"] * dt), minlength=n)}
    if isotropic:
        cols["sigma"] = np.bincount(child, weights=g * ((dx2 + dy2) / th["sx"] ** 2 - 2), minlength=n)
    else:
        cols["sigma_x"] = np.bincount(child, weights=g * (dx2 / th["sx"] ** 2 - 1), minlength=n)
        cols["sigma_y"] = np.bincount(child, weights=g * (dy2 / th["sy"] ** 2 - 1), minlength=n)
    if gaussian:
        cols["background_sd"] = b * (r2 / th["tau"] ** 2 - 2)
    names = list(cols)
    u = np.stack([cols[k] for k in names], axis=1) / lam[:, None]
    cov = np.linalg.pinv(u.T @ u)
    value = {"mu": th["mu"], "theta": th["theta"], "omega": th["omega"], "sigma": th["sx"],
             "sigma_x": th["sx"], "sigma_y": th["sy"], "background_sd": th["tau"]}
    z = float(norm.ppf(0.5 + level / 2))
    estimate, se, interval = {}, {}, {}
    for i, k in enumerate(names):
        se_log = float(np.sqrt(max(cov[i, i], 0.0)))
        estimate[k], se[k] = value[k], value[k] * se_log
        interval[k] = (value[k] * float(np.exp(-z * se_log)), value[k] * float(np.exp(z * se_log)))
    return HawkesFit(estimate=estimate, se=se, interval=interval, level=level, loglik=loglik, iterations=it,
                     converged=converged, triggered_share=float(pg.sum()) / n, p_background=pb, pairs=pairs,
                     p_pairs=pg, max_distance=max_distance)


def recovery_study(params: HawkesParams, horizon: float, seeds: range, **fit_kwargs: object) -> dict[str, object]:
    """Simulate and refit once per seed: per-parameter mean, sd, mean se and coverage, and parent recovery."""
    truth = truth_values(params)
    rows: dict[str, list[tuple[float, float, bool]]] = {}
    runs = []
    for seed in seeds:  # replicate worlds
        ev = simulate_hawkes(params, horizon, np.random.default_rng(seed))
        fit = fit_hawkes(ev, horizon, side=params.side, **fit_kwargs)
        for k, covered in fit.covers(params).items():
            rows.setdefault(k, []).append((fit.estimate[k], fit.se[k], covered))
        rec = fit.parent_recovery(ev.parent)
        runs.append((len(ev), ev.triggered_share, fit.triggered_share, rec["accuracy"], rec["posterior_mass"],
                     fit.iterations))
    table = {}
    for k, vals in rows.items():
        est, se, cov = (np.array(v) for v in zip(*vals))
        table[k] = {"truth": truth[k], "mean": float(est.mean()), "sd": float(est.std(ddof=1)) if est.size > 1
                    else float("nan"), "mean_se": float(se.mean()), "coverage": float(cov.mean()),
                    "z_sd": float(np.std((est - truth[k]) / se, ddof=1)) if est.size > 1 else float("nan")}
    r = np.array(runs, dtype=float)
    return {"parameters": table, "replicates": len(runs), "events": float(r[:, 0].mean()),
            "triggered_true": float(r[:, 1].mean()), "triggered_est": float(r[:, 2].mean()),
            "parent_accuracy": float(r[:, 3].mean()), "parent_posterior_mass": float(r[:, 4].mean()),
            "iterations": float(np.median(r[:, 5]))}
