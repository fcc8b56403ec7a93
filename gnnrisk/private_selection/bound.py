"""The math of the bound: the law of K and Papernot and Steinke's theorems on RDP curves.

N. Papernot and T. Steinke, "Hyperparameter Tuning with Renyi Differential Privacy", ICLR 2022
(arXiv:2110.03620v2; theorem numbers and pages of v2).

Distribution of K: the truncated negative binomial D_{eta,gamma} (Definition 1), eta > -1, 0 < gamma < 1,
on {1, 2, ...}: P[K=k] = (1-gamma)^k / (gamma^-eta - 1) * prod_{l=0}^{k-1} (l+eta)/(l+1) for eta != 0 and
(1-gamma)^k / (k log(1/gamma)) for eta = 0 (the logarithmic distribution); eta = 1 is the geometric
distribution and eta -> inf (gamma -> 1 at a fixed mean) the Poisson limit. Its mean is
E[K] = eta (1-gamma) / (gamma (1-gamma^eta)) for eta != 0 and (1/gamma - 1) / log(1/gamma) for eta = 0.

Theorem 2 (truncated negative binomial, p. 5), `rdp_tnb_selection`: if Q is (lambda, eps)-RDP and
(lambda_hat, eps_hat)-RDP with lambda in (1, inf), lambda_hat in [1, inf), then A is (lambda, eps')-RDP with

    eps' = eps + (1+eta) (1 - 1/lambda_hat) eps_hat + (1+eta) log(1/gamma) / lambda_hat + log(E[K]) / (lambda - 1).

Evaluated at every order lambda of the grid with lambda_hat minimising the two middle terms over the same
grid (each choice is a valid bound, so the minimum is one), then using that RDP is non-decreasing in the
order (a bound at a higher order holds at a lower one). Corollary 3 (p. 6, lambda = lambda_hat -> inf): a
pure eps-DP Q gives a ((2+eta) eps, 0)-DP A (Liu and Talwar's 3 eps at eta = 1), `pure_tnb_epsilon`.

Theorem 6 (Poisson, p. 7), `rdp_poisson_selection`: K ~ Poisson(mu) (K = 0 outputs nothing); if Q is
(lambda, eps)-RDP and (eps_hat, delta_hat)-DP with e^eps_hat <= 1 + 1/(lambda-1), then A is (lambda, eps')-RDP
with eps' = eps + mu delta_hat + log(mu) / (lambda - 1); eps_hat = log(1 + 1/(lambda-1)) and delta_hat from
Q's own RDP curve (`delta_from_rdp`).

Google's dp_accounting has the same formulas (`RepeatAndSelectDpEvent`, rdp_privacy_accountant.
_compute_rdp_repeat_and_select): tests/sweeps/test_private_selection.py checks against it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def orders_of(orders: Sequence[float] | None) -> np.ndarray:
    """The orders as a float array (default `accounting.ORDERS`)."""
    from gnnrisk.privacy.accounting import ORDERS

    return np.asarray(ORDERS if orders is None else orders, dtype=np.float64)


# --- the distribution of K ------------------------------------------------------------------------------------


def expected_trials(eta: float, gamma: float) -> float:
    """E[K] of the truncated negative binomial D_{eta,gamma}."""
    if eta == 0:
        return (1.0 / gamma - 1.0) / math.log(1.0 / gamma)
    return eta * (1.0 - gamma) / (gamma * -math.expm1(eta * math.log(gamma)))


def gamma_for_mean(eta: float, mean: float) -> float:
    """The gamma in (0, 1) at which D_{eta,gamma} has mean `mean` (> 1): E[K] falls from inf to 1 as gamma
    rises from 0 to 1, so bisection (to float precision)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        try:
            above = expected_trials(eta, mid) > mean
        except OverflowError:  # eta < 0 and gamma near 0: E[K] beyond floats
            above = True
        lo, hi = (mid, hi) if above else (lo, mid)
    return (lo + hi) / 2


def tnb_pmf(eta: float, gamma: float, kmax: int) -> np.ndarray:
    """P[K = k] for k = 1..kmax under D_{eta,gamma} (Definition 1), by p_{k+1} = p_k (1-gamma)(k+eta)/(k+1)."""
    if eta == 0:
        p1 = (1.0 - gamma) / math.log(1.0 / gamma)
    else:  # (1-gamma) eta / (gamma^-eta - 1); numerator and denominator share their sign
        p1 = (1.0 - gamma) * eta / math.expm1(-eta * math.log(gamma))
    k = np.arange(1, kmax, dtype=np.float64)
    ratios = (1.0 - gamma) * (k + eta) / (k + 1.0)
    return p1 * np.concatenate([[1.0], np.cumprod(ratios)])


def sample_tnb(eta: float, gamma: float, rng: np.random.Generator) -> int:
    """One draw of D_{eta,gamma} by inverting its CDF (works for every eta > -1)."""
    u = rng.random()
    k, p = 1, tnb_pmf(eta, gamma, 1)[0]
    cdf = p
    while cdf < u:
        p *= (1.0 - gamma) * (k + eta) / (k + 1.0)
        k += 1
        cdf += p
        if p <= 1e-17 * cdf:  # the rest of the tail is below float resolution
            break
    return k


# --- the RDP of the selection ---------------------------------------------------------------------------------


def _monotone(curve: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """RDP is non-decreasing in the order: the bound at order a is the least bound at any order >= a."""
    idx = np.argsort(orders)
    out = np.empty_like(curve)
    out[idx] = np.minimum.accumulate(curve[idx][::-1])[::-1]
    return out


def rdp_tnb_selection(curve: np.ndarray, eta: float, gamma: float,
                      orders: Sequence[float] | None = None) -> np.ndarray:
    """RDP of the best of K ~ D_{eta,gamma} runs of a mechanism with this RDP curve (Theorem 2)."""
    lam, eps = orders_of(orders), np.asarray(curve, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        middle = (1.0 + eta) * ((1.0 - 1.0 / lam) * eps + math.log(1.0 / gamma) / lam)
    c = float(np.min(middle[np.isfinite(middle)])) if np.isfinite(middle).any() else math.inf
    out = eps + c + math.log(expected_trials(eta, gamma)) / (lam - 1.0)
    return _monotone(np.where(lam > 1.0, out, np.inf), lam)


def delta_from_rdp(curve: np.ndarray, epsilon: float, orders: Sequence[float] | None = None) -> float:
    """The least delta at which this RDP curve implies (epsilon, delta)-DP: Canonne, Kamath and Steinke 2020,
    Prop. 12, delta = exp((a-1)(eps_a - epsilon + log(1 - 1/a)) - log a), and the total-variation bound
    sqrt(1 - exp(-eps_a)); as dp_accounting's compute_delta."""
    lam, eps = orders_of(orders), np.asarray(curve, dtype=np.float64)
    best = 0.0  # log delta <= 0
    for a, r in zip(lam, eps):
        if not math.isfinite(r):
            continue
        log_delta = -math.inf if r <= 0 else 0.5 * math.log1p(-math.exp(-r))
        if a > 1.01:
            log_delta = min(log_delta, (a - 1) * (r - epsilon + math.log1p(-1 / a)) - math.log(a))
        best = min(best, log_delta)
    return math.exp(best)


def rdp_poisson_selection(curve: np.ndarray, mean: float, orders: Sequence[float] | None = None) -> np.ndarray:
    """RDP of the best of K ~ Poisson(mean) runs of a mechanism with this RDP curve (Theorem 6)."""
    lam, eps = orders_of(orders), np.asarray(curve, dtype=np.float64)
    out = np.full_like(lam, np.inf)
    for i, a in enumerate(lam):
        if a > 1.0 and math.isfinite(eps[i]):
            delta_hat = delta_from_rdp(eps, math.log1p(1.0 / (a - 1.0)), lam)
            out[i] = eps[i] + mean * delta_hat + math.log(mean) / (a - 1.0)
    return _monotone(out, lam)


def pure_dp_rdp(epsilon: float, orders: Sequence[float] | None = None) -> np.ndarray:
    """RDP of a pure epsilon-DP mechanism: min(epsilon, a epsilon^2 / 2) (D_a <= D_inf; Bun and Steinke 2016,
    Prop. 3.3: epsilon-DP is epsilon^2/2-zCDP)."""
    lam = orders_of(orders)
    return np.minimum(epsilon, lam * epsilon ** 2 / 2.0)


def pure_tnb_epsilon(epsilon: float, eta: float) -> float:
    """Corollary 3: the best of K ~ D_{eta,gamma} runs of an epsilon-DP mechanism is (2+eta) epsilon-DP."""
    return (2.0 + eta) * epsilon


__all__ = ["delta_from_rdp", "expected_trials", "gamma_for_mean", "orders_of", "pure_dp_rdp", "pure_tnb_epsilon",
           "rdp_poisson_selection", "rdp_tnb_selection", "sample_tnb", "tnb_pmf"]
