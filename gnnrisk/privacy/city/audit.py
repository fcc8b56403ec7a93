"""Empirical epsilon on the city: one-run canary audits per privacy unit and mechanism, and broken mechanisms that
the audits must catch.

- `relation_canary_audit` (unit edge:<relation>, `edgerand`, `lapgraph`, `hetero_gap`): node-disjoint absent pairs
  (each person in at most one canary; for knows both ends; places may repeat) are each added to the relation (with
  its reverse) with probability 1/2. Graph perturbation: the mechanism releases the relation of that city and a
  canary scores 1 if its cell is in the released relation, else 0 (a discrete score: `audit_scores` then picks the
  threshold 1). Aggregation perturbation: the hop-1 aggregates of one snapshot (origin max(origins)) are released
  with the mechanism's noise and scored by `audit_canaries.aggregation_scores` (for knows, both directions summed;
  for lives_at/frequents, the place's row and the person's rev_ row).
- `person_canary_audit` (hetero_gap, unit person): new people with random features, D_knows knows ties to random
  people, a home, D_frequents frequented places and D_involved recorded incidents at one place and time (the
  sensitivity's worst case), added with probability 1/2 to the capped city the mechanism reads (the guarantee is
  stated on it: the canaries are within the caps and are not re-capped, so nobody else's capping changes).
- `incident_canary_audit` (hetero_gap, unit incident): new recorded incidents at a random place, each with its own
  person (each person in at most one canary).

Which epsilon the bound is compared to (`claimed_epsilon`, `claimed`):
- graph perturbation: the relation's epsilon (pure DP; delta 0). EdgeRand's canary test is exactly the
  randomized response of one cell, so its exact epsilon equals the claim;
- hetero_gap, `mode="release"` (default, the clean check): the noise multiplier z is calibrated so that ONE
  aggregation release spends the mechanism's epsilon, and the bound is compared to that release's epsilon;
- hetero_gap, `mode="run"`: z is the one the run calibrates for its epsilon (T K aggregation releases, T =
  max(origins) + 1, and the DP-SGD head under the incident/person units, all composed) and the bound is compared to
  the run's composed epsilon. The audit sees one of the T K releases, so eps_lower is expected far below it;
  `epsilon_release` (that one release's RDP epsilon) is the fairer yardstick and is reported too.
`epsilon_exact` is the tight epsilon of what the canaries test: the analytic Gaussian mechanism's at mean shift
1 / z (Balle and Wang 2018) for hetero_gap, the relation's epsilon for graph perturbation. `eps_ceiling` is the
largest bound the counts could give (perfect separation of the evaluation half): a mechanism leaking more than that
cannot be shown to with these many canaries.

Trials share one release, so the basis is "dependent" (Steinke, Nasr and Jagielski 2023), as the homogeneous
canary audits report; for EdgeRand and the hop-1 Gaussian with exclusive rows they are in fact independent given
the city. The bound is `gnnrisk.attack.audit_bound.audit_scores` (threshold on half, Clopper-Pearson at 95% on the
other half).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.stats import norm
from torch_geometric.data import HeteroData

from gnnrisk.attack.audit_bound import audit_scores, eps_from_counts
from gnnrisk.errors import ConfigError
from gnnrisk.privacy.city import aggregation_accounting as aa
from gnnrisk.privacy.city.aggregation import (
    capped_city,
    hop_release,
    snapshot_inputs,
)
from gnnrisk.privacy.city.audit_canaries import (
    Canaries,
    aggregation_scores,
    canary_city,
    designed_messages,
    rev,
)
from gnnrisk.privacy.city.mechanisms import (
    CityEdgeRand,
    CityLapGraph,
    CityMechanism,
    HeteroGap,
)
from gnnrisk.train.city_forecast import Record

FIELD = "audit"
MODES = ("release", "run")
DEFAULT_ORIGINS = (8, 9, 10)  # the documented hetero_gap runs' origins (docs/privacy_city_gap.md)
FEATURE_SCALE = 10.0  # person canaries: features this many standard deviations from the mean, random direction


# --- broken mechanisms: the noise switched off, the epsilon still reported --------------------------------------

class LeakyEdgeRand(CityEdgeRand):
    """EdgeRand with no flips: releases the true relation and still reports its epsilon (a broken mechanism)."""

    broken = True

    def release(self, data: HeteroData, seed: int) -> tuple[HeteroData, dict[str, Any]]:
        """The city unchanged, with the privacy fields of a correct release."""
        return copy.copy(data), {"mechanism": self.name, "privacy_unit": str(self.unit), "epsilon": self.inner.epsilon,
                                 "delta": 0.0, "broken": True}


class LeakyLapGraph(CityLapGraph):
    """LapGraph with no Laplace noise: releases the true relation and still reports its epsilon."""

    broken = True
    release = LeakyEdgeRand.release


class LeakyHeteroGap(HeteroGap):
    """hetero_gap whose aggregation noise is switched off (sigma = 0) while it reports its epsilon."""

    broken = True
    noise_scale = 0.0  # the audit's release multiplies the calibrated noise std by this (1 for HeteroGap)


LEAKY = {"edgerand": LeakyEdgeRand, "lapgraph": LeakyLapGraph, "hetero_gap": LeakyHeteroGap}


def broken(mechanism: CityMechanism) -> CityMechanism:
    """The same mechanism (same config) with its noise switched off: an audit must find eps_lower above its claim."""
    if mechanism.name not in LEAKY:
        raise ConfigError(f"{FIELD}.mechanism", mechanism.name, "no privacy claim to break; expected one of "
                          + ", ".join(LEAKY))
    return LEAKY[mechanism.name](mechanism.cfg)


# --- checks ------------------------------------------------------------------------------------------------------

def _check(mechanism: CityMechanism, kinds: tuple[str, ...], names: tuple[str, ...], audit: str) -> None:
    """One-line refusal of a mechanism or unit this audit does not test."""
    unit = getattr(mechanism, "unit", None)
    if mechanism.name not in names or unit is None or unit.kind not in kinds:
        what = f"privacy={mechanism.name}" + (f" at unit {unit}" if unit is not None else " (no privacy unit)")
        raise ConfigError(f"{FIELD}.unit", str(unit), f"{audit} audits " + " or ".join(names) + " at unit "
                          + " / ".join("edge:<relation>" if k == "edge" else k for k in kinds) + f", not {what}")


def _check_count(num_canaries: Any, most: int, why: str) -> int:
    """num_canaries as an integer in [2, most], else a one-line ConfigError."""
    if isinstance(num_canaries, bool) or not isinstance(num_canaries, (int, np.integer)) or num_canaries < 2:
        raise ConfigError(f"{FIELD}.num_canaries", num_canaries, "expected an integer >= 2 (half the canaries pick "
                          "the threshold, half bound epsilon)")
    if num_canaries > most:
        raise ConfigError(f"{FIELD}.num_canaries", num_canaries, f"expected at most {most} ({why})")
    return int(num_canaries)


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 0xC17A, salt])


# --- the epsilon the audit is compared to --------------------------------------------------------------------

def gaussian_epsilon(mu: float, delta: float) -> float:
    """Tight epsilon at `delta` of a Gaussian mechanism with mean shift mu (sensitivity / std; Balle and Wang 2018)."""
    if mu <= 0:
        return 0.0

    def excess(eps: float) -> float:
        return norm.cdf(mu / 2 - eps / mu) - math.exp(eps + norm.logcdf(-mu / 2 - eps / mu)) - delta

    if excess(0.0) <= 0:
        return 0.0
    hi = 1.0
    while excess(hi) > 0:
        hi *= 2
    return float(brentq(excess, 0.0, hi, xtol=1e-6))


def hetero_gap_noise(mechanism: HeteroGap, data: HeteroData, mode: str = "release",
                     origins: tuple[int, ...] = DEFAULT_ORIGINS, target: str = "place") -> dict[str, Any]:
    """The noise multiplier the audit uses and the epsilon it is compared to (see the module docstring)."""
    if mode not in MODES:
        raise ConfigError(f"{FIELD}.mode", mode, "expected one of " + ", ".join(MODES))
    unit, settings = mechanism.unit, mechanism.settings
    caps = settings["max_degree"]
    count, _ = aa.unit_count(data, unit)
    delta = float(mechanism.delta) if mechanism.delta is not None else 1.0 / (10 * max(count, 1))
    if not math.isfinite(mechanism.epsilon):
        raise ConfigError("privacy.epsilon", mechanism.epsilon, "the audit needs a finite epsilon to compare to")
    if mode == "release":
        z, claimed, _ = aa.calibrate(mechanism.epsilon, delta, 1, 0, [], [], context="for one aggregation release")
        what = "epsilon of one hop-1 aggregation release (RDP accountant), z calibrated for it"
    else:
        privacy = aa.run_privacy(data, unit, mechanism.epsilon, delta, settings, [list(origins)], "origin",
                                 int(data[target].num_nodes))
        releases, z, claimed = privacy["aggregation_releases"], privacy["noise_multiplier"], privacy["epsilon"]
        what = (f"the run's composed epsilon ({releases} aggregation releases"
                + (" + the DP-SGD head" if privacy["head_group"] else "") + "); the audit sees one release")
    sens = aa.hop_sensitivity(unit, caps)
    return {"noise_multiplier": z, "sensitivity": sens, "noise_std": z * sens, "delta": delta,
            "claimed_epsilon": float(claimed), "claimed": what,
            "epsilon_release": aa.epsilon_of(aa.curve(z, 1, 0, [], []), delta),
            "epsilon_exact": gaussian_epsilon(1.0 / z, delta)}


# --- the bound ----------------------------------------------------------------------------------------------------

def _bound(scores: np.ndarray, include: np.ndarray, delta: float, seed: int, claim: dict[str, Any],
           mechanism: CityMechanism, trials: str, start: float, **extra: Any) -> dict[str, Any]:
    """eps_lower from the scores (audit_scores), with the claim, the counts and what the trials were."""
    result = audit_scores(scores, include, delta, seed=seed)
    ceiling = float(eps_from_counts(result.positives, result.positives, 0, result.negatives, delta))
    name = mechanism.name + (" (broken)" if getattr(mechanism, "broken", False) else "")
    return {"mechanism": name, "unit": str(mechanism.unit), "eps_lower": float(result.eps_lower), **claim,
            "eps_ceiling": ceiling, "tp": result.tp, "positives": result.positives, "fp": result.fp,
            "negatives": result.negatives, "threshold": result.threshold, "canaries": int(include.size),
            "included": int(include.sum()), "basis": "dependent", "trials": trials, **extra,
            "seconds": time.perf_counter() - start}


def _snapshot_origin(data: HeteroData, origins: tuple[int, ...]) -> int:
    s = max(origins)
    if not 0 <= s < int(data.num_periods) - 1:
        raise ConfigError(f"{FIELD}.origins", list(origins), f"expected origins in [0, {int(data.num_periods) - 2}]")
    return s


def _aggregation_audit(data: HeteroData, mechanism: HeteroGap, canaries: Canaries,
                       node_values: dict[str, dict[str, torch.Tensor]], seed: int, delta: float | None, mode: str,
                       origins: tuple[int, ...], trials: str, start: float) -> dict[str, Any]:
    """Release hop 1 of snapshot max(origins) of the capped city with the included canaries; score and bound."""
    noise = hetero_gap_noise(mechanism, data, mode, origins)
    s, unit, lags = _snapshot_origin(data, origins), mechanism.unit, int(mechanism.settings["lags"])
    base = capped_city(data, unit, mechanism.settings["max_degree"], seed)
    count = canaries.include.size

    def snap(city: HeteroData) -> tuple[HeteroData, Record]:
        record = Record(city)
        return snapshot_inputs(city, record, s, lags, unit), record

    all_city = canary_city(base, canaries, np.ones(count, dtype=bool), node_values)
    snap_all, record_all = snap(all_city)
    snap_incl, _ = snap(canary_city(base, canaries, canaries.include, node_values))
    snap_base, _ = snap(base)
    seen = record_all.period <= s  # the all-canary city's incident ids -> its snapshot's (sources of messages)
    inc_id = torch.full((int(all_city["incident"].num_nodes),), -1, dtype=torch.long)
    inc_id[record_all.index[seen]] = torch.arange(int(seen.sum()))
    std = noise["noise_std"] * float(getattr(mechanism, "noise_scale", 1.0))
    generator = torch.Generator().manual_seed(seed + 1)
    release = hop_release(snap_incl, {t: snap_incl[t].x for t in snap_incl.node_types}, std, generator)
    baseline = hop_release(snap_base, {t: snap_base[t].x for t in snap_base.node_types}, 0.0)
    own = {t: canaries.first_new[t] for t in canaries.new_nodes}
    messages = designed_messages(canaries, {t: snap_all[t].x for t in snap_all.node_types}, own,
                                 {"incident": inc_id})
    scores, weight = aggregation_scores(release, baseline, messages, count)
    d = noise["delta"] if delta is None else float(delta)
    return _bound(scores, canaries.include, d, seed, {**noise, "delta": d, "mode": mode, "noise_std_used": std},
                  mechanism, trials, start, snapshot_origin=s,
                  signal_share=float(np.sqrt(weight).mean() / noise["sensitivity"]))


# --- edge units ----------------------------------------------------------------------------------------------------

def _absent_pairs(data: HeteroData, relation: tuple[str, str, str], count: int, rng: np.random.Generator
                  ) -> np.ndarray:
    """[2, count] pairs absent from `relation`, each source in at most one pair (for knows both ends)."""
    src, _, dst = relation
    n_src, n_dst = int(data[src].num_nodes), int(data[dst].num_nodes)
    ei = data[relation].edge_index.cpu().numpy()
    existing = np.unique(ei[0].astype(np.int64) * n_dst + ei[1])
    if src == dst:
        perm = rng.permutation(n_src)
        pairs = perm[: 2 * (n_src // 2)].reshape(2, -1)
    else:
        pairs = np.stack([rng.permutation(n_src), rng.integers(n_dst, size=n_src)])
        for _ in range(64):  # redraw the destinations of pairs already in the relation
            bad = np.isin(pairs[0] * n_dst + pairs[1], existing)
            if not bad.any():
                break
            pairs[1, bad] = rng.integers(n_dst, size=int(bad.sum()))
    pairs = pairs[:, ~np.isin(pairs[0].astype(np.int64) * n_dst + pairs[1], existing)]
    if pairs.shape[1] < count:
        raise ConfigError(f"{FIELD}.num_canaries", count, f"expected at most {pairs.shape[1]}: only that many "
                          f"disjoint absent {relation[1]} pairs were found")
    return pairs[:, :count]


def relation_canary_audit(data: HeteroData, mechanism: CityMechanism, num_canaries: int, seed: int,
                          delta: float | None = None, mode: str = "release",
                          origins: tuple[int, ...] = DEFAULT_ORIGINS) -> dict[str, Any]:
    """eps_lower at unit edge:<relation> (mechanism.unit.relation) from `num_canaries` absent-pair canaries."""
    start = time.perf_counter()
    _check(mechanism, ("edge",), ("edgerand", "lapgraph", "hetero_gap"), "relation_canary_audit")
    relation = mechanism.unit.relation
    src, name, dst = relation
    n_src = int(data[src].num_nodes)
    count = _check_count(num_canaries, n_src // 2 if src == dst else n_src,
                         f"canaries are {'node-disjoint pairs among' if src == dst else 'one per person among'} "
                         f"{n_src} {src} nodes")
    rng = _rng(seed, 1)
    pairs = _absent_pairs(data, relation, count, rng)
    include = rng.random(count) < 0.5
    reverse = rev(relation)
    edges = []
    for u, v in pairs.T.tolist():
        e = {relation: [(u, v), (v, u)]} if reverse is None else {relation: [(u, v)], reverse: [(v, u)]}
        edges.append(e)
    canaries = Canaries(include, edges)
    trials = (f"{count} node-disjoint absent {name} pairs, each added (with its reverse) with probability 1/2 to one "
              "release; threshold on half, bound on the other half")
    if mechanism.name == "hetero_gap":
        return _aggregation_audit(data, mechanism, canaries, {}, seed, delta, mode, origins, trials, start)
    city = canary_city(data, canaries, include, {})
    released, _ = mechanism.release(city, seed)
    n_dst = int(data[dst].num_nodes)
    ei = released[relation].edge_index.cpu().numpy().astype(np.int64)
    scores = np.isin(pairs[0].astype(np.int64) * n_dst + pairs[1], ei[0] * n_dst + ei[1]).astype(float)
    eps = float(mechanism.inner.epsilon)
    claim = {"claimed_epsilon": eps, "claimed": f"the {name} relation's epsilon (pure DP)", "epsilon_exact": eps,
             "delta": 0.0 if delta is None else float(delta), "mode": "release"}
    return _bound(scores, include, claim["delta"], seed, claim, mechanism, trials, start,
                  released_edges=int(ei.shape[1]))


# --- node units (hetero_gap) -----------------------------------------------------------------------------------

def _incident_values(times: np.ndarray, period_days: float) -> dict[str, torch.Tensor]:
    """Attribute rows of recorded canary incidents at `times` (days)."""
    return {"time": torch.from_numpy(times.astype(np.float64)),
            "period": torch.from_numpy((times // period_days).astype(np.int64)),
            "recorded": torch.ones(times.size, dtype=torch.bool), "parent": torch.full((times.size,), -1),
            "p_record": torch.ones(times.size)}


def person_canary_audit(data: HeteroData, mechanism: CityMechanism, num_canaries: int, seed: int,
                        delta: float | None = None, mode: str = "release", origins: tuple[int, ...] = DEFAULT_ORIGINS,
                        feature_scale: float = FEATURE_SCALE) -> dict[str, Any]:
    """eps_lower for hetero_gap at unit person from `num_canaries` worst-case canary people."""
    start = time.perf_counter()
    _check(mechanism, ("person",), ("hetero_gap",), "person_canary_audit")
    people, places = int(data["person"].num_nodes), int(data["place"].num_nodes)
    caps = mechanism.settings["max_degree"]
    d_knows, d_freq, d_inv = int(caps["knows"]), int(caps["frequents"]), int(caps["involved_in"])
    count = _check_count(num_canaries, people, f"at most one canary per person of the {people}")
    if d_knows > people or d_freq > places:
        raise ConfigError("privacy.max_degree", dict(caps), f"the caps exceed the city ({people} people, "
                          f"{places} places): no worst-case canary fits")
    s = _snapshot_origin(data, origins)
    rng = _rng(seed, 2)
    x = data["person"].x.float()
    direction = torch.from_numpy(rng.standard_normal((count, x.size(1)))).float()
    direction = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-12)
    features = x.mean(0) + feature_scale * x.std(0).clamp(min=1e-6) * direction
    first_person, first_inc = people, int(data["incident"].num_nodes)
    days = float(data.period_days)
    times = np.repeat(s * days + rng.random(count) * days, d_inv)  # one time per canary: identical incident rows
    edges = []
    for c in range(count):
        v = first_person + c
        friends = rng.choice(people, size=d_knows, replace=False)
        home = int(rng.integers(places))
        haunts = rng.choice(places, size=d_freq, replace=False)
        spot = int(rng.integers(places))
        incs = [first_inc + c * d_inv + k for k in range(d_inv)]
        edges.append({("person", "knows", "person"): [(v, int(u)) for u in friends],
                      ("person", "lives_at", "place"): [(v, home)], ("place", "rev_lives_at", "person"): [(home, v)],
                      ("person", "frequents", "place"): [(v, int(p)) for p in haunts],
                      ("place", "rev_frequents", "person"): [(int(p), v) for p in haunts],
                      ("incident", "occurred_at", "place"): [(i, spot) for i in incs],
                      ("place", "rev_occurred_at", "incident"): [(spot, i) for i in incs],
                      ("person", "involved_in", "incident"): [(v, i) for i in incs],
                      ("incident", "rev_involved_in", "person"): [(i, v) for i in incs]})
    include = rng.random(count) < 0.5
    canaries = Canaries(include, edges, {"person": 1, "incident": d_inv}, {"person": first_person,
                                                                            "incident": first_inc})
    values = {"person": {"x": features}, "incident": _incident_values(times, days)}
    trials = (f"{count} canary people ({d_knows} knows ties, 1 home, {d_freq} frequented places, {d_inv} recorded "
              f"incidents at one place and time; features {feature_scale:g} std from the mean), each added with "
              "probability 1/2 to the capped city; one release; threshold on half, bound on the other half")
    return _aggregation_audit(data, mechanism, canaries, values, seed, delta, mode, origins, trials, start)


def incident_canary_audit(data: HeteroData, mechanism: CityMechanism, num_canaries: int, seed: int,
                          delta: float | None = None, mode: str = "release",
                          origins: tuple[int, ...] = DEFAULT_ORIGINS) -> dict[str, Any]:
    """eps_lower for hetero_gap at unit incident from `num_canaries` recorded canary incidents."""
    start = time.perf_counter()
    _check(mechanism, ("incident",), ("hetero_gap",), "incident_canary_audit")
    people, places = int(data["person"].num_nodes), int(data["place"].num_nodes)
    count = _check_count(num_canaries, people, f"each canary incident has its own person among {people}")
    s = _snapshot_origin(data, origins)
    rng = _rng(seed, 3)
    who = rng.permutation(people)[:count]
    where = rng.integers(places, size=count)
    days = float(data.period_days)
    times = rng.random(count) * (s + 1) * days  # periods 0..s: their age varies their hop-0 row
    first = int(data["incident"].num_nodes)
    edges = [{("incident", "occurred_at", "place"): [(first + c, int(where[c]))],
              ("place", "rev_occurred_at", "incident"): [(int(where[c]), first + c)],
              ("person", "involved_in", "incident"): [(int(who[c]), first + c)],
              ("incident", "rev_involved_in", "person"): [(first + c, int(who[c]))]} for c in range(count)]
    include = rng.random(count) < 0.5
    canaries = Canaries(include, edges, {"incident": 1}, {"incident": first})
    trials = (f"{count} recorded canary incidents (random place and time <= period {s}, each with its own person), "
              "each added with probability 1/2; one release; threshold on half, bound on the other half")
    return _aggregation_audit(data, mechanism, canaries, {"incident": _incident_values(times, days)}, seed, delta,
                              mode, origins, trials, start)


__all__ = [
    "DEFAULT_ORIGINS",
    "MODES",
    "LeakyEdgeRand",
    "LeakyHeteroGap",
    "LeakyLapGraph",
    "broken",
    "gaussian_epsilon",
    "hetero_gap_noise",
    "incident_canary_audit",
    "person_canary_audit",
    "relation_canary_audit",
]
