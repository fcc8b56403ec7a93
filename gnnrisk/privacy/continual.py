"""Continual release: a pure epsilon-DP graph mechanism applied to every period's snapshot.

Each released period is perturbed independently with per-period budget epsilon (fresh noise).
Two neighbouring relations are reported, both by basic composition of pure DP, which is exact
for pure epsilon-DP mechanisms (the worst-case privacy loss adds up):
  - event level, one tie in one period: it changes one cell of one snapshot, so epsilon;
  - tie level, one tie over the whole horizon: a tie present in k released periods changes k
    snapshots (k events), so k * epsilon, and k can be every released period, so the headline
    `epsilon` is periods * epsilon: what the run spent against the stronger relation.
"""

from __future__ import annotations

from typing import Any


def continual_release(epsilon_per_period: float, periods: int) -> dict[str, Any]:
    """The flat privacy fields of `periods` independent epsilon-DP snapshot releases."""
    return {
        "epsilon": periods * epsilon_per_period,
        "privacy_unit": "edge",
        "privacy_unit_detail": f"one tie in every period it is present ({periods} periods released)",
        "epsilon_event": epsilon_per_period,
        "privacy_unit_event": "edge-period",
        "epsilon_per_period": epsilon_per_period,
        "released_periods": periods,
    }
