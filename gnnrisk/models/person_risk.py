"""Person-based risk baselines on the city: each person's own record, and their exposure through ties.

Both read only the record before `now` (each recorded incident's person and time in days) and return
one score per person, on the scale of an expected recorded involvement count over the next `horizon`
days (only their order enters the metrics). They stand for what person-based tools score:

- `person_history`: the person's recorded involvements, each weighted 2 ** (-age / half_life_days)
  (prior arrests and victimisations with fading weight, as in Chicago's Strategic Subject List).
- `network_exposure`: that score plus `tie_weight` times the sum of the same score over the person's
  ties (`knows`), the network exposure of Papachristos et al. (2015, 2017): people near recent
  involvements are at risk through co-offending and retaliation. `tie_weight` is set, not fitted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gnnrisk.errors import check_number, model_settings

PERSON_BASELINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "person_history": {"half_life_days": 90.0},
    "network_exposure": {"half_life_days": 90.0, "tie_weight": 0.5},
}


def person_baseline_config(name: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline's parameters: its defaults overlaid with `cfg`; unknown or bad values refused."""
    out = model_settings(name, PERSON_BASELINE_DEFAULTS[name], cfg)
    check_number("model.half_life_days", out["half_life_days"], low=0.0, low_open=True)
    if "tie_weight" in out:
        check_number("model.tie_weight", out["tie_weight"], low=0.0)
    return out


def _history(person: np.ndarray, time: np.ndarray, num_people: int, now: float, half_life_days: float) -> np.ndarray:
    """Per person: the sum of 2 ** (-age / half-life) over their recorded involvements before `now`."""
    keep = time < now
    weight = np.exp2(-(now - time[keep]) / half_life_days)
    return np.bincount(person[keep], weights=weight, minlength=num_people).astype(np.float64)


def _as_rate(score: np.ndarray, person: np.ndarray, time: np.ndarray, now: float, horizon: float,
             half_life_days: float) -> np.ndarray:
    """`score` rescaled to total the record's recent involvement rate over `horizon` days."""
    window = min(now, 2 * half_life_days)
    total = float(((time < now) & (time >= now - window)).sum()) * horizon / max(window, 1e-9)
    mass = score.sum()
    return score * (total / mass) if mass > 0 else np.zeros_like(score)


def person_history(person: np.ndarray, time: np.ndarray, num_people: int, ties: np.ndarray, now: float,
                   horizon: float, half_life_days: float) -> np.ndarray:
    """Each person's own recorded involvements, fading with age."""
    score = _history(person, time, num_people, now, half_life_days)
    return _as_rate(score, person, time, now, horizon, half_life_days)


def network_exposure(person: np.ndarray, time: np.ndarray, num_people: int, ties: np.ndarray, now: float,
                     horizon: float, half_life_days: float, tie_weight: float) -> np.ndarray:
    """Own fading record plus `tie_weight` times the ties' fading records (`ties`: directed [2, E], both ways)."""
    own = _history(person, time, num_people, now, half_life_days)
    exposure = np.bincount(ties[1], weights=own[ties[0]], minlength=num_people)
    return _as_rate(own + tie_weight * exposure, person, time, now, horizon, half_life_days)


PERSON_BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "person_history": person_history, "network_exposure": network_exposure}
