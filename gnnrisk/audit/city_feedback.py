"""The patrol feedback loop on the city: forecasts send patrols, patrols decide what is recorded.

After Lum & Isaac (2016) and Ensign et al. (FAT* 2018). The generated city fixes the truth
(which incidents happen, where, involving whom); patrols do not change crime, only the record. So the
loop re-draws the record period by period with the generator's formula

    P(recorded_i) = presence[p_i, k_i] * det_p[g_i] + (1 - presence[p_i, k_i]) * det_u[g_i]

(p_i the incident's place, k_i its period, g_i the group of the person involved), and
recorded_i = u_i < P(recorded_i) with one fixed uniform u_i per incident, drawn from the audit's seed
and not the generator's: the record is a deterministic, monotone (if det_p >= det_u) function of
presence, and every strategy sees the same u (common random numbers, so strategies pair by seed).

Periods 0..warmup-1 keep the generated static presence `place.patrol`. Then for t = warmup-1 .. K-2:
the forecaster (any place model of `gnnrisk.train.city_forecast`) reads the record fed to it up to t
and scores the places for t + 1; `budget` x P places (k, rounded) are patrolled with presence `high`,
the others get `low`, solved so that the mean presence equals the static coverage (mean of
`place.patrol`): low = (coverage P - k high) / (P - k). Modes (`audit.mode`):

- `none`: the k top-scored places (ties broken at random); the record is fed as it is.
- `random`: k uniformly random places (the baseline; its patrol share is the resident share).
- `explore`: the top k - e places, plus e = max(1, round(explore k)) drawn uniformly from the rest.
- `ipw`: the allocation of `explore`, and each recorded incident fed with weight 1 / pi_i, pi_i its
  marginal propensity of being recorded over the allocation's randomness: pi_p P(rec | high) +
  (1 - pi_p) P(rec | low), pi_p = 1 for the top k - e places and e / (P - k + e) for the rest (the
  static presence's P(recorded) in warm-up periods). sum_i w_i recorded_i is then the Horvitz-Thompson
  count of every incident, unbiased whatever the forecaster did; explore > 0 keeps every pi positive
  even when det_u = 0. The weights use the known detection model (an oracle view of the observation
  process: an upper bound on what a correction can do). `forecast_city` reads a boolean record, so the
  baselines are called here with per-incident weights (`weighted_baseline`: `gnnrisk.models.hotspot`'s
  kernels take `weight`; the SEPP's EM then maximises the HT pseudo-likelihood); a GNN with ipw is refused.
- `surprise` (Ensign et al.'s correction, `gnnrisk.audit.urn`): a recorded incident at place p in
  period k is fed with probability min_q presence[q, k] / presence[p, k] (a second fixed uniform v_i),
  so the more-patrolled places feed less. It assumes discoveries proportional to presence; here the
  unpatrolled detection det_u > 0 also records, so it over-corrects.
- `oracle`: a reference, not a forecaster: the top k places by the true expected count of t + 1.

Both corrections apply to every period of the fed record, warm-up included. Stage keys and defaults
(`DEFAULTS`): mode none, warmup 4, budget 0.2, high 0.9, explore 0.1 (read by explore and ipw). det_p
and det_u are the city's (`data.detection_patrolled`, `data.detection_unpatrolled`) unless passed. `run_city_feedback` writes one row per
period (`_table`) to city_feedback.csv, the figure to city_feedback.png, and returns `summarise`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from gnnrisk.data.city.loader import is_city
from gnnrisk.errors import ConfigError, Refusals, check_choice, check_number
from gnnrisk.models import hotspot as hs
from gnnrisk.models.hetero import HETERO_MODELS
from gnnrisk.train import city_forecast as cf
from gnnrisk.utils.files import write_text_atomic

MODES = ("none", "random", "explore", "ipw", "surprise", "oracle")
PLACE_MODELS = (*hs.BASELINES, *HETERO_MODELS)
DEFAULTS: dict[str, Any] = {"mode": "none", "warmup": 4, "budget": 0.2, "high": 0.9, "explore": 0.1}
TABLE_FILE, PLOT_FILE = "city_feedback.csv", "city_feedback.png"
_U, _V, _ALLOC = 1, 2, 3  # random streams, each np.random.default_rng([seed, stream])
Forecaster = Callable[[HeteroData, int], np.ndarray]  # (city with the fed record, origin) -> place scores for origin + 1


@dataclass(frozen=True)
class CityFeedbackSettings:
    """The validated stage: mode, warm-up periods, patrolled places k, presences, explored places e."""

    mode: str
    warmup: int
    k: int
    high: float
    low: float
    e: int
    coverage: float


def detection_from_data(data: HeteroData) -> tuple[np.ndarray, np.ndarray]:
    """(det_p, det_u) per group: the city's P(recorded) where patrolled and where not (`generate_city` keeps them)."""
    return (data.detection_patrolled.double().cpu().numpy(), data.detection_unpatrolled.double().cpu().numpy())


def validate_city_feedback(stage_cfg: Mapping[str, Any], data: HeteroData, model_name: str) -> CityFeedbackSettings:
    """Check every stage field against the city and the forecaster; one ConfigError line per bad field."""
    if not is_city(data):
        raise ConfigError("data.name", getattr(data, "name", None), "the city feedback loop needs data=synthetic_city")
    cfg = {**DEFAULTS, **{k: v for k, v in stage_cfg.items() if k in DEFAULTS}}
    periods, places = int(data.num_periods), int(data["place"].num_nodes)
    coverage = float(data["place"].patrol.double().mean())
    gnn = model_name in HETERO_MODELS
    out: dict[str, Any] = {"coverage": coverage, "low": math.nan, "k": 1, "e": 0}
    refusals = Refusals()
    with refusals.check():
        out["mode"] = check_choice("audit.mode", cfg["mode"], MODES)
    with refusals.check():
        check_choice("model.name", model_name, PLACE_MODELS)
        if gnn and cfg["mode"] == "ipw":
            raise ConfigError("audit.mode", "ipw", "ipw feeds a weighted record, which only the baselines read ("
                              + ", ".join(hs.BASELINES) + f"); model={model_name} reads a boolean record")
    with refusals.check():
        first = 2 if gnn else 1  # a GNN needs a training origin before its first origin
        if periods - 2 < first:
            raise ConfigError("data.periods", periods, f"expected at least {first + 2} periods for the loop")
        out["warmup"] = check_number("audit.warmup", cfg["warmup"], low=first, high=periods - 2, integer=True)
    with refusals.check():
        budget = check_number("audit.budget", cfg["budget"], low=0.0, high=1.0, low_open=True, high_open=True)
        out["k"] = k = round(budget * places)
        if not 1 <= k <= places - 1:
            raise ConfigError("audit.budget", budget, f"expected a share of the {places} places that patrols "
                              f"between 1 and {places - 1} of them (it patrols {k})")
        high = check_number("audit.high", cfg["high"], low=0.0, high=1.0)
        out["high"], out["low"] = high, (coverage * places - k * high) / (places - k)
        if not 0.0 <= out["low"] <= high:
            raise ConfigError("audit.high", high, f"with {k} patrolled places the others would need presence "
                              f"{out['low']:.3f} to keep the mean presence {coverage:.3f}; expected "
                              "high such that that stays in [0, high]")
    with refusals.check():
        explore = check_number("audit.explore", cfg["explore"], low=0.0, high=1.0, high_open=True)
        if cfg["mode"] == "ipw" and explore == 0:
            raise ConfigError("audit.explore", explore, "mode=ipw needs explore in (0, 1): every place must have "
                              "a positive probability of being patrolled")
        if cfg["mode"] in ("explore", "ipw") and explore > 0:
            out["e"] = min(out["k"], max(1, round(explore * out["k"])))
    refusals.raise_any()
    return CityFeedbackSettings(**out)


def _incident_place(data: HeteroData) -> np.ndarray:
    """The place of each incident (its one occurred_at edge)."""
    ei = data["incident", "occurred_at", "place"].edge_index.cpu().numpy()
    out = np.empty(data["incident"].num_nodes, dtype=np.int64)
    out[ei[0]] = ei[1]
    return out


def record_probability(presence: np.ndarray, group: np.ndarray, det_p: np.ndarray, det_u: np.ndarray) -> np.ndarray:
    """P(recorded) of incidents at the given presences: presence * det_p[g] + (1 - presence) * det_u[g]."""
    return presence * det_p[group] + (1.0 - presence) * det_u[group]


def incident_uniforms(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed uniforms per incident: u (recorded iff u < P(recorded)) and v (surprise's thinning)."""
    return np.random.default_rng([seed, _U]).random(n), np.random.default_rng([seed, _V]).random(n)


def allocate(scores: np.ndarray, k: int, e: int, mode: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The patrolled places (bool [P]) and each place's inclusion probability under the allocation's randomness."""
    n = scores.size
    order = rng.permutation(n)  # random tie-breaking, then a stable sort by score
    ranked = order[np.argsort(-scores[order], kind="stable")]
    chosen, incl = np.zeros(n, dtype=bool), np.zeros(n)
    if mode == "random":
        chosen[rng.choice(n, k, replace=False)] = True
        return chosen, np.full(n, k / n)
    top = k - e if mode in ("explore", "ipw") else k
    chosen[ranked[:top]], incl[ranked[:top]] = True, 1.0
    rest = ranked[top:]
    chosen[rng.choice(rest, k - top, replace=False)] = True
    incl[rest] = (k - top) / rest.size
    return chosen, incl


def weighted_baseline(data: HeteroData, name: str, model_cfg: Mapping[str, Any], weight: np.ndarray,
                      origin: int) -> np.ndarray:
    """Place scores for origin + 1 of a baseline fitted to every incident of periods <= origin, weighted."""
    cfg = hs.baseline_config(name, model_cfg)
    side, days = int(data.grid_size), float(data.period_days)
    pos = data["place"].pos.long().cpu().numpy()
    cell_of_place = pos[:, 0] * side + pos[:, 1]
    keep = (weight > 0) & (data["incident"].period.cpu().numpy() <= origin)
    cell, time = cell_of_place[_incident_place(data)[keep]], data["incident"].time.double().cpu().numpy()[keep]
    return hs.BASELINES[name](cell, time, side, (origin + 1) * days, days, **cfg, weight=weight[keep])[cell_of_place]


def forecast_scores(data: HeteroData, fed: np.ndarray, origin: int, model_name: str, model_cfg: Mapping[str, Any],
                    train_cfg: Mapping[str, Any], seed: int, forecaster: Forecaster | None = None) -> np.ndarray:
    """Place scores for origin + 1 from the fed record up to origin: weights, or 0/1 read by `forecast_city`
    (or by `forecaster`, a private mechanism's refit, given the city with the fed record and the origin)."""
    fed = np.where(data["incident"].period.cpu().numpy() <= origin, fed, 0.0)
    if np.any((fed != 0) & (fed != 1)):
        return weighted_baseline(data, model_name, model_cfg, fed, origin)
    view = copy.copy(data)  # shallow: only `incident.recorded` differs
    view["incident"].recorded = torch.from_numpy(fed > 0)
    if forecaster is not None:
        return np.asarray(forecaster(view, origin), dtype=np.float64)
    return cf.forecast_city(view, model_name, model_cfg, train_cfg, [origin], seed).scores[0].double().numpy()


def loop_origins(s: CityFeedbackSettings, num_periods: int) -> list[int]:
    """The origins at which the loop refits its forecaster (none for the oracle and random allocations): what a
    private forecaster's accountant composes."""
    return [] if s.mode in ("oracle", "random") else list(range(s.warmup - 1, num_periods - 1))


def _group_share(weight: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Each group's share of `weight` (NaN if it sums to 0)."""
    total = np.bincount(group, weights=weight, minlength=k)
    return total / total.sum() if total.sum() > 0 else np.full(k, np.nan)


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: equal, towards 1: concentrated in one)."""
    x = np.sort(np.asarray(x, dtype=float))
    n, s = x.size, x.sum()
    return float(2 * (np.arange(1, n + 1) * x).sum() / (n * s) - (n + 1) / n) if s > 0 else math.nan


def simulate_city_feedback(s: CityFeedbackSettings, data: HeteroData, model_name: str, model_cfg: Mapping[str, Any],
                           train_cfg: Mapping[str, Any], seed: int,
                           detection: tuple[np.ndarray, np.ndarray] | None = None,
                           forecaster: Forecaster | None = None) -> pd.DataFrame:
    """Run the loop for `s.mode`; one row per period (warm-up rows labelled) with the per-group shares."""
    det_p, det_u = (np.asarray(d, dtype=float) for d in
                    (detection if detection is not None else detection_from_data(data)))
    names, periods, places = list(data.group_names), int(data.num_periods), int(data["place"].num_nodes)
    inc = data["incident"]
    place, period, group = _incident_place(data), inc.period.cpu().numpy(), inc.group.cpu().numpy()
    u, v = incident_uniforms(seed, place.size)
    rng = np.random.default_rng([seed, _ALLOC])
    static = data["place"].patrol.double().cpu().numpy()
    truth = data["place"].rate.double().cpu().numpy()
    pres = np.repeat(static[:, None], periods, axis=1)  # [P, K]
    incl = np.full((places, periods), np.nan)
    patrolled = np.zeros((periods, places), dtype=bool)
    patrolled[: s.warmup, np.argsort(-static, kind="stable")[: s.k]] = True  # warm-up: the k most-patrolled
    prob = record_probability(pres[place, period], group, det_p, det_u)
    recorded = u < prob
    for t in range(s.warmup - 1, periods - 1):  # the loop over periods
        if s.mode == "oracle":
            scores = truth[:, t + 1]
        elif s.mode == "random":
            scores = np.zeros(places)
        else:
            scores = forecast_scores(data, _fed(s, recorded, prob, pres, incl, place, period, group, v, det_p, det_u),
                                     t, model_name, model_cfg, train_cfg, seed, forecaster)
        patrolled[t + 1], incl[:, t + 1] = allocate(scores, s.k, s.e, s.mode, rng)
        pres[:, t + 1] = np.where(patrolled[t + 1], s.high, s.low)
        now = period == t + 1
        prob[now] = record_probability(pres[place[now], t + 1], group[now], det_p, det_u)
        recorded[now] = u[now] < prob[now]
    fed = _fed(s, recorded, prob, pres, incl, place, period, group, v, det_p, det_u)
    return _table(s, data, names, pres, patrolled, recorded, fed, place, period, group)


def _fed(s: CityFeedbackSettings, recorded: np.ndarray, prob: np.ndarray, pres: np.ndarray, incl: np.ndarray,
         place: np.ndarray, period: np.ndarray, group: np.ndarray, v: np.ndarray, det_p: np.ndarray,
         det_u: np.ndarray) -> np.ndarray:
    """The record the forecaster reads, as a weight per incident: 0/1, thinned (surprise) or 1 / propensity (ipw)."""
    if s.mode == "surprise":
        here, least = pres[place, period], pres.min(axis=0)[period]
        keep = np.divide(least, here, out=np.ones_like(here), where=here > least)
        return (recorded & (v < keep)).astype(float)
    if s.mode == "ipw":
        pi = incl[place, period]  # NaN in warm-up periods, whose presence is fixed
        hi, lo = (record_probability(np.full(pi.size, x), group, det_p, det_u) for x in (s.high, s.low))
        marginal = np.where(np.isnan(pi), prob, np.nan_to_num(pi) * hi + (1 - np.nan_to_num(pi)) * lo)
        return np.divide(1.0, marginal, out=np.zeros(pi.size), where=recorded)
    return recorded.astype(float)


def _table(s: CityFeedbackSettings, data: HeteroData, names: list[str], pres: np.ndarray, patrolled: np.ndarray,
           recorded: np.ndarray, fed: np.ndarray, place: np.ndarray, period: np.ndarray,
           group: np.ndarray) -> pd.DataFrame:
    """One row per period: per-group patrol, recorded, fed, true, resident and need shares; hit rate, overlap, Gini.

    A group's patrol share is sum_p presence_p s_pg / sum_p presence_p sum_h s_ph, s the places' resident
    shares (a place nobody lives at weighs nothing); its resident share is that of uniform presence, and
    its need share that of presence in proportion to the period's true incidents per place (the patrol
    share of a perfect, proportional allocation). Recorded, fed and true shares count incidents by the
    group of the person involved. The warm-up's patrolled set is its k most-patrolled places.
    """
    share = data["place"].resident_share.double().cpu().numpy()  # [P, G]; a place nobody lives at has zeros
    k, places = len(names), share.shape[0]
    resident = share.sum(0) / share.sum()  # the patrol share of uniform presence
    counts = np.zeros((places, pres.shape[1]))
    np.add.at(counts, (place[recorded], period[recorded]), 1.0)
    true = np.bincount(place * pres.shape[1] + period, minlength=counts.size).reshape(counts.shape)
    cum = counts.cumsum(axis=1)
    rows = []
    for t in range(pres.shape[1]):  # periods
        now = period == t
        patrol = pres[:, t] @ share
        row: dict[str, Any] = {"mode": s.mode, "period": t, "phase": "warmup" if t < s.warmup else "loop",
                               "incidents": int(now.sum()), "recorded": int(recorded[now].sum()),
                               "hit_rate": true[patrolled[t], t].sum() / max(true[:, t].sum(), 1),
                               "overlap": (patrolled[t] & patrolled[t - 1]).sum() / s.k if t else math.nan,
                               "gini_recorded": gini(cum[:, t])}
        parts = {"patrol_share": patrol / patrol.sum(), "recorded_share": _group_share(recorded[now], group[now], k),
                 "fed_share": _group_share(fed[now], group[now], k),
                 "true_share": _group_share(np.ones(now.sum()), group[now], k), "resident_share": resident,
                 "need_share": (true[:, t] @ share) / max((true[:, t] @ share).sum(), 1e-300)}
        row.update({f"{key}_{n}": float(val[j]) for key, val in parts.items() for j, n in enumerate(names)})
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, names: list[str]) -> dict[str, float]:
    """Flat `feedback_*` metrics of the loop's periods: final and mean shares and disparities per group."""
    loop = table[table["phase"] == "loop"]
    last = loop.iloc[-1]
    out: dict[str, float] = {}
    for n in names:  # a few groups
        for key in ("patrol_share", "recorded_share", "fed_share", "true_share", "resident_share", "need_share"):
            out[f"feedback_{key}_{n}_final"] = float(last[f"{key}_{n}"])
            out[f"feedback_{key}_{n}_mean"] = float(loop[f"{key}_{n}"].mean())
        for key in ("patrol", "recorded"):
            gap = loop[f"{key}_share_{n}"] - loop[f"true_share_{n}"]
            out[f"feedback_{key}_disparity_{n}_final"] = float(gap.iloc[-1])
            out[f"feedback_{key}_disparity_{n}_mean"] = float(gap.mean())
    out.update({"feedback_hit_rate_mean": float(loop["hit_rate"].mean()),
                "feedback_overlap_final": float(last["overlap"]),
                "feedback_overlap_mean": float(loop["overlap"].mean()),
                "feedback_gini_recorded_final": float(last["gini_recorded"])})
    return out


def run_city_feedback(stage_cfg: Mapping[str, Any], data: HeteroData, model_name: str, model_cfg: Mapping[str, Any],
                      train_cfg: Mapping[str, Any], run_dir: Path | None, seed: int,
                      detection: tuple[np.ndarray, np.ndarray] | None = None,
                      forecaster: Forecaster | None = None) -> dict[str, float]:
    """Validate, run the loop, write city_feedback.csv and .png into `run_dir` (if given), return flat metrics."""
    settings = validate_city_feedback(stage_cfg, data, model_name)
    table = simulate_city_feedback(settings, data, model_name, model_cfg, train_cfg, seed, detection, forecaster)
    if run_dir is not None:
        from gnnrisk.audit.city_feedback_plot import plot_city_feedback
        write_text_atomic(Path(run_dir) / TABLE_FILE, table.to_csv(index=False))
        plot_city_feedback(table, list(data.group_names), Path(run_dir) / PLOT_FILE)
    return summarise(table, list(data.group_names))
