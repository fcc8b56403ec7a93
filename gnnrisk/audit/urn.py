"""Ensign et al.'s Polya-urn model of predictive policing (FAT* 2018), vectorised over runs.

A faithful re-implementation of the generalised urn in algofairness/runaway-feedback-loops-src
(`src/polya.py`, `src/Makefile` target `paper-examples`), written for numpy and many runs at once.
Each region holds a count of recorded incidents (the urn's balls), starting at `prior`. Every day:

  1. one patrol goes to region k with probability equal to k's share of the urn;
  2. the patrol discovers Poisson(rate_k) incidents there (the rates are Poisson means of
     discovered crime per patrol-day, not probabilities); none are discovered elsewhere;
  3. the strategy decides what is added to the urn (below);
  4. with `decay` > 0, each ball leaves independently with probability `decay` (their binomial
     thinning, PredPol's limited memory) and every count is floored at 1.

The patrol share recorded for a day is the urn's share after that day's update (their `probplot`).

Strategies:
  - `none`: every discovered incident is added (their `--poisson`).
  - `surprise`: a day's discoveries in region k are added with probability min_j share_j / share_k,
    so the region the urn already favours records less. In expectation region k gains
    rate_k * min_j share_j whatever the shares, so the counts' ratios converge to the rates'.
  - `surprise_linear`: their `--linear_surprise` as written: probability (1 - share_k) divided by
    the largest (1 - share_j). With two regions 1 - share_A = share_B, so it equals `surprise`; with
    more it does not correct the loop (region k gains rate_k * share_k * (1 - share_k) / max).
  - `mixed`: discovered incidents at weight w (Poisson(w * rate_k) where the patrol goes) plus
    reported incidents (911 calls) at weight 1 - w in every region every day (Poisson((1 - w) *
    rate_j)), all added (their `--a/--b/--c/--d` update matrix with discovered weight `wd`).
  - `mixed_surprise`: reported incidents always added, discovered ones thinned as in `surprise`
    (their `--partial_surprise`; they add the reported counts' means when the discoveries are
    dropped and Poisson draws otherwise, here they are Poisson draws in both cases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gnnrisk.errors import ConfigError, Refusals, check_choice, check_number

STRATEGIES = ("none", "surprise", "surprise_linear", "mixed", "mixed_surprise")
OAKLAND_RATES = (3.68511, 2.816466)  # Lum & Isaac's estimated daily drug use, Oakland's top two regions
OAKLAND_PRIOR = (609.0, 379.0)  # the "strong prior" of the paper's figures


@dataclass(frozen=True)
class UrnSetting:
    """One urn experiment: daily discovery rates and prior counts per region, its length and size."""

    rates: tuple[float, ...] = OAKLAND_RATES
    prior: tuple[float, ...] = OAKLAND_PRIOR
    days: int = 1000
    runs: int = 1000
    decay: float = 0.01
    discovered_weight: float = 0.5  # used by the mixed strategies only


OAKLAND = UrnSetting()


def _check_finite(field: str, value: object, low_open: bool) -> None:
    """Refuse a rate or count that is not a finite number above (or at) zero."""
    check_number(field, value, low=0.0, low_open=low_open)
    if math.isinf(value):  # type: ignore[arg-type]
        raise ConfigError(field, value, "expected a finite number")


def check_setting(setting: UrnSetting) -> None:
    """Raise a ConfigError naming every field of `setting` that the urn cannot run with."""
    refusals = Refusals()
    with refusals.check():
        if len(setting.rates) < 2:
            raise ConfigError("urn.rates", list(setting.rates), "expected at least two regions")
        for i, rate in enumerate(setting.rates):
            _check_finite(f"urn.rates[{i}]", rate, low_open=False)
        if not sum(setting.rates) > 0:
            raise ConfigError("urn.rates", list(setting.rates), "expected a positive rate somewhere")
    with refusals.check():
        if len(setting.prior) != len(setting.rates):
            raise ConfigError("urn.prior", list(setting.prior), f"expected {len(setting.rates)} counts, one per rate")
        for i, count in enumerate(setting.prior):
            _check_finite(f"urn.prior[{i}]", count, low_open=True)
    with refusals.check():
        check_number("urn.days", setting.days, low=1, integer=True)
    with refusals.check():
        check_number("urn.runs", setting.runs, low=1, integer=True)
    with refusals.check():
        check_number("urn.decay", setting.decay, low=0.0, high=1.0, high_open=True)
    with refusals.check():
        check_number("urn.discovered_weight", setting.discovered_weight, low=0.0, high=1.0)
    refusals.raise_any()


def true_shares(rates: tuple[float, ...]) -> np.ndarray:
    """The patrol shares that match the true rates: rate_k / sum(rates)."""
    r = np.asarray(rates, dtype=float)
    return r / r.sum()


def mixed_fixed_point(rates: tuple[float, float], discovered_weight: float) -> float:
    """Region A's share where the uncorrected mixed urn's mean update keeps it (two regions).

    With w the discovered weight, A gains rate_A * (1 - w + w s) and B rate_B * (1 - w s) a day, and
    s = gain_A / (gain_A + gain_B) gives w (rA - rB) s^2 + (rA (1 - 2w) + rB) s - rA (1 - w) = 0: one
    root in (0, 1) for w < 1 (the red line of their figures); w = 1 is the plain urn's runaway.
    """
    if len(rates) != 2:
        raise ConfigError("urn.rates", list(rates), "expected two regions for the fixed point")
    ra, rb = (float(r) for r in rates)
    w = check_number("urn.discovered_weight", discovered_weight, low=0.0, high=1.0)
    if w == 1.0:
        return 1.0 if ra > rb else 0.0 if ra < rb else math.nan
    a, b, c = w * (ra - rb), ra * (1 - 2 * w) + rb, -ra * (1 - w)
    if abs(a) < 1e-12:
        return -c / b
    disc = math.sqrt(b * b - 4 * a * c)
    roots = [(-b + disc) / (2 * a), (-b - disc) / (2 * a)]
    return next(s for s in roots if 0.0 <= s <= 1.0)


def simulate_urn(strategy: str, setting: UrnSetting = OAKLAND, seed: int = 0) -> np.ndarray:
    """Patrol shares of every region, day by day, for `setting.runs` independent runs of the urn.

    Returns an array of shape (days + 1, runs, regions): row 0 the prior's shares, row t the shares
    after day t's update (the probabilities of patrolling each region on day t + 1).
    """
    check_choice("urn.strategy", strategy, STRATEGIES)
    check_setting(setting)
    rng = np.random.default_rng(seed)
    rates = np.asarray(setting.rates, dtype=float)
    regions, runs = len(rates), int(setting.runs)
    mixed = strategy in ("mixed", "mixed_surprise")
    thinned = strategy in ("surprise", "surprise_linear", "mixed_surprise")
    discovery = rates * setting.discovered_weight if mixed else rates
    reported = rates * (1.0 - setting.discovered_weight)
    counts = np.tile(np.asarray(setting.prior, dtype=float), (runs, 1))
    shares = np.empty((int(setting.days) + 1, runs, regions))
    shares[0] = counts / counts.sum(axis=1, keepdims=True)
    rows = np.arange(runs)
    for day in range(1, int(setting.days) + 1):
        share = shares[day - 1]
        # inverse-CDF draw: region k when u falls in k's slice of [0, 1); the clip guards rounding at 1
        patrol = np.minimum((share.cumsum(axis=1) <= rng.random(runs)[:, None]).sum(axis=1), regions - 1)
        found = rng.poisson(discovery[patrol]).astype(float)
        if thinned:
            if strategy == "surprise_linear":
                keep = (1.0 - share[rows, patrol]) / (1.0 - share).max(axis=1)
            else:
                keep = share.min(axis=1) / share[rows, patrol]
            found *= rng.random(runs) < keep
        counts[rows, patrol] += found
        if mixed:
            counts += rng.poisson(reported, size=(runs, regions))
        if setting.decay > 0:
            # their numpy binomial truncates a fractional count to an integer number of trials
            counts = np.maximum(counts - rng.binomial(counts.astype(np.int64), setting.decay), 1.0)
        shares[day] = counts / counts.sum(axis=1, keepdims=True)
    return shares


def summarise_urn(shares: np.ndarray, rates: tuple[float, ...], region: int = 0,
                  runaway: float = 0.9) -> dict[str, float]:
    """Region `region`'s final patrol share across runs against its true share, and how many ran away.

    `runaway_any` counts runs whose final share exceeds `runaway` in some region, `runaway_region`
    those where it is this region; `se` is the standard error of `mean` over the independent runs.
    """
    final = shares[-1]
    if final.ndim != 2 or final.shape[1] != len(rates):
        raise ConfigError("shares", tuple(shares.shape), f"expected (days + 1, runs, {len(rates)}) from simulate_urn")
    check_number("region", region, low=0, high=len(rates) - 1, integer=True)
    check_number("runaway", runaway, low=0.5, high=1.0, high_open=True)
    x = final[:, region]
    n = len(x)
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    return {
        "true_share": float(true_shares(rates)[region]),
        "mean": float(x.mean()),
        "se": sd / math.sqrt(n),
        "sd": sd,
        "q05": float(np.quantile(x, 0.05)),
        "median": float(np.median(x)),
        "q95": float(np.quantile(x, 0.95)),
        "runaway_any": float((final.max(axis=1) > runaway).mean()),
        "runaway_region": float((x > runaway).mean()),
        "runs": float(n),
    }
