"""`hydra.sweeper.private_selection`: how K is drawn, the delta to report at, the seed, the score's noise."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.private_selection.bound import (expected_trials, gamma_for_mean, orders_of, rdp_poisson_selection,
                                             rdp_tnb_selection, sample_tnb)

FIELD = "hydra.sweeper.private_selection"
DISTRIBUTIONS = ("truncated_negative_binomial", "poisson")
KNOWN = ("distribution", "eta", "gamma", "mean", "delta", "seed", "score_noise")


@dataclass(frozen=True)
class PrivateSelection:
    """The checked setting of a private selection."""

    distribution: str
    eta: float | None        # truncated negative binomial only
    gamma: float | None      # truncated negative binomial only (given, or solved from `mean`)
    mean: float              # E[K]
    delta: float | None      # null: the trials' delta
    seed: int | None         # null: K and the trials' noise seeds drawn from fresh OS entropy (they stay secret)
    score_noise: float | None = None  # node level: std of the Gaussian noise on the validation count (required)

    @classmethod
    def from_settings(cls, value: Any) -> "PrivateSelection | None":
        """The checked setting, or None when private selection is off; a bad field is a one-line ConfigError."""
        from omegaconf import DictConfig, OmegaConf

        if value is None:
            return None
        if isinstance(value, DictConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if not isinstance(value, Mapping):
            raise ConfigError(FIELD, value, "expected null or {distribution: truncated_negative_binomial, eta: 1, "
                              "gamma: 0.1} (or mean: 10 instead of gamma; distribution: poisson takes mean)")
        for key in value:
            if key not in KNOWN:
                raise ConfigError(f"{FIELD}.{key}", value[key], "unknown field; known: " + ", ".join(KNOWN))
        dist = value.get("distribution", DISTRIBUTIONS[0])
        if dist not in DISTRIBUTIONS:
            raise ConfigError(f"{FIELD}.distribution", dist, "expected one of " + ", ".join(DISTRIBUTIONS))
        delta = value.get("delta")
        if delta is not None:
            delta = check_number(f"{FIELD}.delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
        seed = value.get("seed")
        if seed is not None:
            seed = int(check_number(f"{FIELD}.seed", seed, low=0, integer=True))
        score_noise = value.get("score_noise")
        if score_noise is not None:
            score_noise = _finite(f"{FIELD}.score_noise", score_noise, low=0.0)
        if dist == "poisson":
            for key in ("eta", "gamma"):
                if value.get(key) is not None:
                    raise ConfigError(f"{FIELD}.{key}", value[key], "the Poisson distribution takes only mean (mu > 0)")
            mean = _finite(f"{FIELD}.mean", value.get("mean"), low=0.0)
            return cls(dist, None, None, mean, delta, seed, score_noise)
        eta = _finite(f"{FIELD}.eta", value.get("eta", 1.0), low=-1.0)
        gamma, mean = value.get("gamma"), value.get("mean")
        if (gamma is None) == (mean is None):
            raise ConfigError(f"{FIELD}.gamma", gamma, "give exactly one of gamma (in (0, 1)) and mean (E[K] > 1)")
        if gamma is not None:
            gamma = check_number(f"{FIELD}.gamma", gamma, low=0.0, high=1.0, low_open=True, high_open=True)
        else:
            mean = _finite(f"{FIELD}.mean", mean, low=1.0)
            gamma = gamma_for_mean(eta, mean)
            if not 0.0 < gamma < 1.0 or not math.isclose(expected_trials(eta, gamma), mean, rel_tol=1e-6):
                raise ConfigError(f"{FIELD}.mean", mean, f"no gamma in (0, 1) gives this mean with eta={eta:g} "
                                  "(near eta = -1, E[K] grows too slowly as gamma falls); raise eta")
        try:
            expected = expected_trials(eta, gamma)
        except OverflowError:
            expected = math.inf
        if not math.isfinite(expected) or expected > 1e9:
            raise ConfigError(f"{FIELD}.gamma", gamma, f"with eta={eta:g} the expected number of trials is beyond 1e9")
        return cls(dist, eta, gamma, expected, delta, seed, score_noise)

    @property
    def theorem(self) -> str:
        return ("Papernot & Steinke 2022, Theorem 6 (Poisson)" if self.distribution == "poisson"
                else "Papernot & Steinke 2022, Theorem 2 (truncated negative binomial)")

    def describe(self) -> str:
        if self.distribution == "poisson":
            return f"Poisson(mu={self.mean:g})"
        return f"truncated negative binomial (eta={self.eta:g}, gamma={self.gamma:.6g}; E[K]={self.mean:.4g})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def draw(self, rng: np.random.Generator | None = None) -> int:
        """K: seeded by `seed`, else from fresh OS entropy."""
        rng = rng or np.random.default_rng(self.seed)
        if self.distribution == "poisson":
            return int(rng.poisson(self.mean))
        return sample_tnb(float(self.eta), float(self.gamma), rng)


def _finite(field: str, value: Any, low: float) -> float:
    """A finite number > low."""
    out = check_number(field, value, low=low, low_open=True)
    if not math.isfinite(out):
        raise ConfigError(field, value, f"expected a finite number > {low:g}" +
                          (" (eta -> inf is distribution: poisson)" if field.endswith("eta") else ""))
    return out


def selection_rdp(curve: np.ndarray, spec: PrivateSelection, orders: Sequence[float] | None = None) -> np.ndarray:
    """The RDP curve of the selection (the best trial and its score) under `spec`."""
    if spec.distribution == "poisson":
        return rdp_poisson_selection(curve, spec.mean, orders)
    return rdp_tnb_selection(curve, float(spec.eta), float(spec.gamma), orders)


def selection_epsilon(curve: np.ndarray, spec: PrivateSelection, delta: float,
                      orders: Sequence[float] | None = None) -> float:
    """The epsilon at `delta` of the selection under `spec` (the trial's RDP curve given)."""
    from gnnrisk.privacy.accounting import epsilon_from_rdp

    return epsilon_from_rdp(selection_rdp(curve, spec, orders), delta, orders_of(orders))


__all__ = ["DISTRIBUTIONS", "FIELD", "PrivateSelection", "selection_epsilon", "selection_rdp"]
