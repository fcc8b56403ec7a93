"""Renyi-DP accounting shared by the private mechanisms (stable API; other mechanisms import it).

Every function returns or consumes an RDP *curve*: a float64 numpy array holding the RDP epsilon
at each order of `ORDERS` (or of the `orders` argument). Curves of different mechanisms over the
same orders compose by addition (`compose`), and a curve converts to (epsilon, delta)-DP with
`epsilon_from_rdp`. Noise is calibrated to a target epsilon with `calibrate_noise`.

    from gnnrisk.privacy import accounting as acc
    curve = acc.compose(acc.rdp_gaussian(noise_std=4.0, sensitivity=1.0, steps=2),
                        acc.rdp_subsampled_gaussian(noise_multiplier=1.1, sample_rate=0.01, steps=500))
    eps = acc.epsilon_from_rdp(curve, delta=1e-5)

Building blocks: Opacus's `compute_rdp` (Poisson-subsampled Gaussian, Mironov et al. 2019) and
`get_privacy_spent` (RDP -> DP conversion of Balle et al. 2020); what Opacus lacks is added here:
the plain Gaussian mechanism, composition of heterogeneous mechanisms, and the node-level DP-SGD
bound of Daigavane et al. 2021 for degree-bounded K-hop neighbourhoods.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from scipy.special import logsumexp
from scipy.stats import hypergeom

from gnnrisk.errors import ConfigError

# Opacus's RDPAccountant.DEFAULT_ALPHAS plus a few large orders (helpful for large noise).
ORDERS: tuple[float, ...] = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
                                  + [80, 96, 128, 192, 256])
# Integer orders only: Opacus's subsampled-Gaussian RDP is ~50x cheaper there, so calibration loops
# use them. A subset of orders can only give a larger epsilon, so noise calibrated on it is safe.
INTEGER_ORDERS: tuple[float, ...] = tuple(o for o in ORDERS if float(o).is_integer())


def _orders(orders: Sequence[float] | None) -> np.ndarray:
    """The orders as a float array (default `ORDERS`)."""
    return np.asarray(ORDERS if orders is None else orders, dtype=np.float64)


def rdp_subsampled_gaussian(noise_multiplier: float, sample_rate: float, steps: int,
                            orders: Sequence[float] | None = None) -> np.ndarray:
    """RDP of `steps` Poisson-subsampled Gaussian steps (DP-SGD, add/remove one example), via Opacus.

    `noise_multiplier` is the noise std divided by the L2 sensitivity (the clipping bound).
    """
    alphas = _orders(orders)
    return np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=steps,
                                  orders=list(alphas)), dtype=np.float64)


def rdp_gaussian(noise_std: float, sensitivity: float, steps: int = 1,
                 orders: Sequence[float] | None = None) -> np.ndarray:
    """RDP of `steps` Gaussian mechanisms (no subsampling) with std `noise_std` and L2 `sensitivity`.

    Mironov 2017, Prop. 7: eps(alpha) = alpha * sensitivity^2 / (2 noise_std^2) per release.
    """
    alphas = _orders(orders)
    if noise_std <= 0:
        return np.full_like(alphas, np.inf)
    return steps * alphas * sensitivity ** 2 / (2.0 * noise_std ** 2)


def occurrences_bound(max_degree: int, num_hops: int) -> int:
    """Most K-hop examples one node can occur in when every degree is <= D: sum_{k=0..K} D^k."""
    return sum(int(max_degree) ** k for k in range(int(num_hops) + 1))


def rdp_node_dpsgd(noise_multiplier: float, num_examples: int, batch_size: int, max_degree: int,
                   num_hops: int, steps: int, orders: Sequence[float] | None = None) -> np.ndarray:
    """Node-level RDP of DP-SGD on degree-bounded K-hop neighbourhoods (Daigavane et al. 2021, Thm 1).

    Setting (arXiv 2111.15521, Algorithm 1 and Theorem 1): every step samples `batch_size` of the
    `num_examples` training examples uniformly *without replacement*, sums their per-example
    gradients clipped to norm C, and adds N(0, (noise_multiplier * C)^2 I). A node occurs in at most
    N = occurrences_bound(D, K) examples, so the number rho of its examples in a batch is
    Hypergeometric(num_examples, N, batch_size), and each of them moves the sum by at most 2C.
    By the joint convexity of exp((alpha-1) D_alpha) one step is (alpha, gamma)-RDP with

        gamma(alpha) = 1/(alpha-1) * ln E_rho[ exp( 2 alpha (alpha-1) rho^2 / noise_multiplier^2 ) ],

    and `steps` steps compose to steps * gamma. Vectorised over orders and the support of rho.
    """
    alphas = _orders(orders)
    if noise_multiplier <= 0:
        return np.full_like(alphas, np.inf)
    n, b = int(num_examples), int(batch_size)
    occ = min(occurrences_bound(max_degree, num_hops), n)
    rho = np.arange(max(0, b + occ - n), min(occ, b) + 1, dtype=np.float64)
    log_pmf = hypergeom(n, occ, b).logpmf(rho)
    exponent = 2.0 * alphas[:, None] * (alphas[:, None] - 1.0) * rho[None, :] ** 2 / noise_multiplier ** 2
    gamma = logsumexp(exponent + log_pmf[None, :], axis=1) / (alphas - 1.0)
    return steps * np.maximum(gamma, 0.0)


def compose(*curves: np.ndarray) -> np.ndarray:
    """RDP of running several mechanisms on the same data: the sum of their curves (same orders)."""
    return np.sum(np.stack([np.asarray(c, dtype=np.float64) for c in curves]), axis=0)


def epsilon_from_rdp(rdp: np.ndarray, delta: float, orders: Sequence[float] | None = None) -> float:
    """The smallest epsilon over orders such that the RDP curve implies (epsilon, delta)-DP (Opacus)."""
    alphas = _orders(orders)
    rdp = np.asarray(rdp, dtype=np.float64)
    if not np.isfinite(rdp).any():
        return math.inf
    finite = np.isfinite(rdp)
    with warnings.catch_warnings():  # Opacus warns when the best order is at the edge of the grid
        warnings.simplefilter("ignore", UserWarning)
        eps, _ = get_privacy_spent(orders=list(alphas[finite]), rdp=list(rdp[finite]), delta=delta)
    return float(eps)


def calibrate_noise(target_epsilon: float, delta: float, epsilon_fn: Callable[[float], float], *,
                    context: str = "", field: str = "privacy.epsilon", low: float = 0.05,
                    high: float = 1e4, tol: float = 1e-3, max_iter: int = 100) -> tuple[float, float]:
    """Smallest noise multiplier (to relative `tol`) whose spent epsilon is <= target.

    `epsilon_fn(noise_multiplier) -> epsilon spent` must decrease in the noise multiplier.
    Returns `(noise_multiplier, epsilon_spent)` with epsilon_spent <= target_epsilon. If even
    `high` noise spends more than the target, raises ConfigError naming `field` and `context`
    (e.g. "with train.epochs=200"): the target cannot be reached with that many steps.
    """
    eps_high = epsilon_fn(high)
    if eps_high > target_epsilon:
        raise ConfigError(field, target_epsilon,
                          f"unreachable {context}: even noise multiplier {high:g} spends epsilon "
                          f"{eps_high:.3g} at delta={delta:g}; raise the epsilon or use fewer epochs/steps")
    if epsilon_fn(low) <= target_epsilon:
        return low, epsilon_fn(low)
    lo, hi = low, high
    for _ in range(max_iter):  # bisection in log space: lo spends too much, hi is within budget
        mid = math.sqrt(lo * hi)
        if epsilon_fn(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
        if hi / lo - 1.0 < tol:
            break
    return hi, epsilon_fn(hi)


__all__ = ["INTEGER_ORDERS", "ORDERS", "calibrate_noise", "compose", "epsilon_from_rdp", "occurrences_bound",
           "rdp_gaussian", "rdp_node_dpsgd", "rdp_subsampled_gaussian"]
