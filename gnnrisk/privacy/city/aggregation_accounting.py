"""Accounting of aggregation perturbation per relation on the city (`hetero_gap`, `aggregation`).

Derivations in docs/privacy_city_gap.md; in brief (Delta = L2 sensitivity of one hop's whole release,
every relation's rows together, with unit-norm messages; rows of the unit's own nodes are never output):

- edge:<rel>: the tie's two directed edges (knows: u -> v and v -> u; lives_at/frequents: the edge and its
  rev_ edge) each move one row of one relation by one unit-norm message: Delta^2 = 2;
- incident: the incident sends one message to its place (occurred_at) and one to its person
  (rev_involved_in): Delta^2 = 2; its own rows (the messages into it) are internal;
- person (on the capped graph): its knows out-edges (<= D_knows distinct people), its home (1), its
  frequented places (<= D_frequents distinct places) and its <= D_involved incidents' occurred_at messages,
  which may all land in one place's row: Delta^2 = D_knows + 1 + D_frequents + D_involved^2.

Every snapshot s = 0..max(origins) is released once, K hops each: T K Gaussian mechanisms of std
z Delta (RDP alpha / (2 z^2) each). Under the incident and person units the head is trained with DP-SGD
in which each recorded incident is one example (add/remove): the unit removes m = 1 (incident) or
m <= D_involved (person) examples, each moving the clipped sum by <= C. Head noise std z m C; a step is
bounded as a Poisson-subsampled Gaussian of the group (rate 1 - (1 - q)^m, noise multiplier z), the deletion
bound of `dpdgc.rdp_rows_dpsgd` (removed=m, changed=0), which `hetero_gap_dp_event` states exactly.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from opacus.accountants.analysis.rdp import compute_rdp
from torch_geometric.data import HeteroData

from gnnrisk.privacy import accounting as acc
from gnnrisk.privacy.city.units import Unit
from gnnrisk.privacy.gap_dpsgd import poisson_schedule

ORDERS = acc.INTEGER_ORDERS
ACCOUNTANT = ("rdp: T x K Gaussian aggregation hops (std z Delta) + per refit DP-SGD head steps, each a "
              "Poisson-subsampled Gaussian of the unit's group of m incident examples (rate 1-(1-q)^m, std z m C)")


def sensitivity_terms(unit: Unit, caps: dict[str, int]) -> dict[str, int]:
    """Squared L2 norm that the unit's messages into rows outside the unit add to one hop's release, per relation."""
    if unit.kind == "edge":
        src, rel, dst = unit.relation
        return {rel: 2} if src == dst else {rel: 1, f"rev_{rel}": 1}
    if unit.kind == "incident":
        return {"occurred_at": 1, "rev_involved_in": 1}
    return {"knows": int(caps["knows"]), "lives_at": 1, "frequents": int(caps["frequents"]),
            "occurred_at": int(caps["involved_in"]) ** 2}


def hop_sensitivity(unit: Unit, caps: dict[str, int]) -> float:
    """L2 sensitivity of one hop's release (all relations' noisy sums together)."""
    return math.sqrt(sum(sensitivity_terms(unit, caps).values()))


def head_group(unit: Unit, caps: dict[str, int]) -> int:
    """Incident examples of the head that one unit adds or removes (0: the labels are public)."""
    return {"edge": 0, "incident": 1, "person": int(caps["involved_in"])}[unit.kind]


def unit_count(data: HeteroData, unit: Unit) -> tuple[int, str]:
    """N of the default delta 1/(10 N): the unit's entities in the city, and what they are."""
    if unit.kind == "person":
        return int(data["person"].num_nodes), "people"
    if unit.kind == "incident":
        return int(data["incident"].num_nodes), "incidents"
    src, rel, dst = unit.relation
    edges = int(data[unit.relation].edge_index.size(1))
    return (edges // 2 if src == dst else edges), f"{rel} ties"


def group_rdp(noise_multiplier: float, sample_rate: float, group: int, steps: int) -> np.ndarray:
    """RDP of `steps` DP-SGD steps with noise std noise_multiplier * group * C against removing `group` examples
    (each Poisson-sampled with `sample_rate`, each moving the clipped sum by <= C): a subsampled Gaussian of
    rate 1 - (1 - q)^group and noise multiplier `noise_multiplier` (a mixture of shifts of norm <= group C is no
    worse than the largest, by the joint convexity of exp((alpha - 1) D_alpha))."""
    rate = 1.0 - (1.0 - sample_rate) ** group
    return np.asarray(compute_rdp(q=rate, noise_multiplier=noise_multiplier, steps=steps, orders=list(ORDERS)),
                      dtype=np.float64)


def curve(z: float, releases: int, group: int, rates: list[float], steps: list[int]) -> np.ndarray:
    """The run's RDP curve over ORDERS: the Gaussian aggregations and, if the labels are private, every head fit."""
    parts = [acc.rdp_gaussian(z, 1.0, steps=releases, orders=ORDERS)]
    if group:
        parts += [group_rdp(z, q, group, n) for q, n in zip(rates, steps)]
    return acc.compose(*parts)


def epsilon_of(rdp: np.ndarray, delta: float) -> float:
    """(epsilon, delta)-DP of a curve over ORDERS (Opacus's conversion, Balle et al. 2020)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return acc.epsilon_from_rdp(rdp, delta, orders=ORDERS)


def calibrate(target_epsilon: float, delta: float, releases: int, group: int, rates: list[float],
              steps: list[int], context: str) -> tuple[float, float, dict[str, float]]:
    """Smallest shared noise multiplier z whose composed epsilon is <= target; (z, spent, each part's alone)."""
    z, eps = acc.calibrate_noise(target_epsilon, delta,
                                 lambda z: epsilon_of(curve(z, releases, group, rates, steps), delta),
                                 context=context)
    alone = {"aggregation_epsilon_alone": epsilon_of(curve(z, releases, 0, [], []), delta)}
    if group:
        alone["head_epsilon_alone"] = epsilon_of(acc.compose(*[group_rdp(z, q, group, n)
                                                               for q, n in zip(rates, steps)]), delta)
    return z, eps, alone


def forecast_schedule(origins: list[int], refit: str, settings: dict[str, Any], targets: int
                      ) -> tuple[int, list[float], list[int]]:
    """One forecast's releases: Gaussian aggregation hops (T snapshots x K), and each head fit's Poisson rate
    and steps (the DP-SGD head of the person and incident units; unused under edge units)."""
    ends = list(origins) if refit == "origin" else [min(origins)]
    rates, steps = [], []
    for end in ends:
        q, per_epoch = poisson_schedule(targets * end, int(settings["batch_size"]))
        rates.append(q)
        steps.append(int(settings["epochs"]) * per_epoch)
    return (max(origins) + 1) * int(settings["hops"]), rates, steps


def run_privacy(data: HeteroData, unit: Unit, epsilon: float, delta: float | None, settings: dict[str, Any],
             forecasts: list[list[int]], refit: str, targets: int) -> dict[str, Any]:
    """The privacy dict of every forecast in `forecasts` composed: calibrated noise, caps, sensitivities, releases,
    epsilon spent (None when epsilon is inf: no noise)."""
    caps, hops = settings["max_degree"], int(settings["hops"])
    count, what = unit_count(data, unit)
    delta = float(delta) if delta is not None else 1.0 / (10 * max(count, 1))
    sens, m = hop_sensitivity(unit, caps), head_group(unit, caps)
    releases, rates, steps = 0, [], []
    for origins in forecasts:
        r, q, n = forecast_schedule(origins, refit, settings, targets)
        releases, rates, steps = releases + r, rates + q, steps + n
    out: dict[str, Any] = {
        "mechanism": "hetero_gap", "privacy_unit": str(unit), "privacy_unit_detail": unit.detail,
        "target_epsilon": float(epsilon), "delta": delta, "delta_default": f"1/(10 N), N = {count} {what}",
        "hops": hops, "aggregation_sensitivity": sens,
        "aggregation_sensitivity_terms": ", ".join(f"{r}: {v}" for r, v in sensitivity_terms(unit, caps).items()),
        "max_degree_knows": caps["knows"] if unit.kind == "person" else None,
        "max_degree_lives_at": 1 if unit.kind == "person" else None,
        "max_degree_frequents": caps["frequents"] if unit.kind == "person" else None,
        "max_degree_involved_in": caps["involved_in"] if unit.kind == "person" else None,
        "head_private": bool(m), "head_group": m, "max_grad_norm": float(settings["max_grad_norm"]) if m else None,
        "head_refits": len(steps), "head_sample_rates": rates if m else [], "head_steps": steps if m else [],
        "forecasts_composed": len(forecasts), "snapshots_released": releases // hops,
        "aggregation_releases": releases, "releases_composed": releases + (sum(steps) if m else 0),
        "accountant": ACCOUNTANT}
    if math.isfinite(epsilon):
        z, spent, alone = calibrate(epsilon, delta, releases, m, out["head_sample_rates"], out["head_steps"],
                                       context=f"with privacy.hops={hops}, {releases // hops} snapshots released "
                                       f"over {len(forecasts)} forecast(s), privacy.epochs={settings['epochs']}, "
                                       f"privacy.batch_size={settings['batch_size']}")
        out.update(epsilon=spent, noise_multiplier=z, **alone)
    else:
        out.update(epsilon=None, delta=None, target_epsilon=None, noise_multiplier=0.0)
    z = out["noise_multiplier"]
    out.update(aggregation_noise_std=z * sens, head_noise_multiplier=z * m if m else None,
               head_noise_std=z * m * float(settings["max_grad_norm"]) if m else None)
    return out


def hetero_gap_dp_event(privacy: dict[str, Any]) -> Any:
    """The run's DpEvent for an independent recount (dp_accounting); None when no noise was added.

    K Gaussian hops per released snapshot (noise multiplier z: std z Delta over sensitivity Delta), and for
    private labels one self-composed Poisson-sampled Gaussian per head fit, with the group's sampling rate
    1 - (1 - q)^m and noise multiplier z (std z m C over the group's shift m C), add/remove neighbouring.
    """
    import dp_accounting as dpa

    if privacy.get("epsilon") is None:
        return None
    z = float(privacy["noise_multiplier"])
    events = [dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z), int(privacy["aggregation_releases"]))]
    m = int(privacy.get("head_group") or 0)
    if m:
        for q, n in zip(privacy["head_sample_rates"], privacy["head_steps"]):
            rate = 1.0 - (1.0 - float(q)) ** m
            events.append(dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(rate, dpa.GaussianDpEvent(z)), int(n)))
    return dpa.ComposedDpEvent(events)


__all__ = [
    "ACCOUNTANT",
    "calibrate",
    "curve",
    "epsilon_of",
    "forecast_schedule",
    "group_rdp",
    "head_group",
    "hetero_gap_dp_event",
    "hop_sensitivity",
    "run_privacy",
    "sensitivity_terms",
    "unit_count",
]
