"""Node-level DP-SGD per person over the person's computation graph on the city (`hetero_dpsgd`): Daigavane et
al. 2021 ("Node-level differentially private graph neural networks") carried to typed relations, at a city
privacy unit (`person` or `incident`, `gnnrisk.privacy.city.units`).

1. person unit only, once on the whole city (seeded): `aggregation.capped_city`, as hetero_gap: each person keeps at
   most max_degree.knows knows out-edges, max_degree.frequents frequented places, one home and
   max_degree.involved_in recorded incidents; the rest is dropped from everything read (record and labels too).
2. per origin s, the snapshot (`city_forecast.snapshot` on the capped record) on the message relations
   (`dpsgd_model`): a message flows from a person along its own out-edges only, so the people whose knows
   out-edges point at a person (unbounded in number) change only that person's row, never carry its data on.
   Record-derived features (a place's recorded counts, a person's involvements) are kept when
   `record_features` (their change is in the group bound), dropped otherwise; the incident unit always drops
   the person's involvements (its person's ties are not capped).
3. the forecaster: `model=hetero_sage` with K = model.num_layers layers (dropout 0), log-rate offset 0 (the mean
   count is private: the head's bias learns it). Each example is one (place p, training origin s) pair with loss
   exp(f) - y f over p's K-hop computation graph in snapshot s; per-example gradients exact
   (`dpsgd_model.per_example_grads`), clipped to C = max_grad_norm, summed over every example of the fit (full
   batch), N(0, (z 2 G C)^2 I) added, divided by the number of examples; Adam, `steps` steps, last weights. Fits as
   `train.refit` says (one per evaluated origin on s < t, or once); each fit's steps are composed.
4. the group G = N_K x T (T = training origins of the fit): N_K bounds the places whose K-layer output or label one
   unit can change in one snapshot (`dpsgd_accounting`, docs/privacy_city_dpsgd.md); each of those examples'
   clipped gradients moves by <= 2C (it exists in both cities), hence the sensitivity 2 G C. Accounting: every
   step a Gaussian mechanism of noise multiplier z, composed by RDP, no amplification; z calibrated to the target.

What the epsilon covers: the trained weights. The forecasts at the evaluated origins apply them to the snapshot of
the capped city at each origin, which holds the unit's ties and record un-noised: they are NOT covered (the privacy
dict says `forecasts_covered: False`), unlike hetero_gap's, which read only released aggregates. Person forecasts
are refused (a row per person would tell who is in the city; the group bound counts places).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, Refusals, check_choice, check_number
from gnnrisk.models.hetero import hetero_config
from gnnrisk.privacy.city import aggregation_accounting as aa
from gnnrisk.privacy.city import dpsgd_accounting as da
from gnnrisk.privacy.city.aggregation import (
    HETERO_GAP_DEFAULTS,
    capped_city,
    check_caps,
    check_incident_links,
)
from gnnrisk.privacy.city.dpsgd_model import (
    MESSAGE_RELATIONS,
    Graph,
    Params,
    forward,
    init_params,
    message_graph,
    per_example_grads,
    poisson_loss,
)
from gnnrisk.privacy.city.units import Unit
from gnnrisk.train.city_forecast import (
    TARGETS,
    CityForecast,
    Record,
    check_origins,
    snapshot,
    train_config,
)

NAME = "hetero_dpsgd"
MODEL = "hetero_sage"  # the to_hetero model whose per-example gradients dpsgd_model computes
UNITS = ("person", "incident")
HETERO_DPSGD_DEFAULTS: dict[str, Any] = {
    "max_degree": dict(HETERO_GAP_DEFAULTS["max_degree"]),  # person unit only: caps per person
    "record_features": True,  # keep the record-derived features (counted in the group) or drop them
    "steps": 50,  # full-batch DP-SGD steps per fit
    "lr": 0.01,  # Adam learning rate
    "max_grad_norm": 1.0,  # C: per-example clipping bound
}
PASSED_APART = ("name", "unit", "epsilon", "delta", "diagnostics")  # read by the wiring
COVERS = ("the trained weights (every DP-SGD step); the forecasts apply them to each evaluated origin's snapshot of "
          "the capped city, read without noise, and are not covered")


def hetero_dpsgd_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """HETERO_DPSGD_DEFAULTS overlaid with the privacy group `cfg` (the keys passed apart ignored), checked: a
    ConfigError naming privacy.<key> per bad value, all of them at once."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in dict(cfg or {}).items() if k not in PASSED_APART}
    refusals = Refusals()
    for key in cfg:
        if key not in HETERO_DPSGD_DEFAULTS:
            with refusals.check():
                raise ConfigError(f"privacy.{key}", cfg[key], f"privacy={NAME} has no such setting; its keys are "
                                  + ", ".join([*PASSED_APART, *HETERO_DPSGD_DEFAULTS]))
    out = {**HETERO_DPSGD_DEFAULTS, **{k: v for k, v in cfg.items() if k in HETERO_DPSGD_DEFAULTS}}
    out["max_degree"] = check_caps(out["max_degree"], refusals)
    with refusals.check():
        if not isinstance(out["record_features"], bool):
            raise ConfigError("privacy.record_features", out["record_features"], "expected true or false")
    with refusals.check():
        out["steps"] = check_number("privacy.steps", out["steps"], low=1, integer=True)
    for key in ("max_grad_norm", "lr"):
        with refusals.check():
            out[key] = check_number(f"privacy.{key}", out[key], low=0.0, low_open=True)
    refusals.raise_any()
    return out


def check_forecaster(model: str, target: str, unit: Unit | None) -> None:
    """The model must be hetero_sage and the target places; refused in one line otherwise."""
    if model != MODEL:
        raise ConfigError("model.name", model, f"privacy={NAME} computes exact per-example gradients of {MODEL} "
                          f"(to_hetero SAGEConv) only; choose model={MODEL}")
    check_choice("eval.target", target, TARGETS)
    if target == "person" and unit is not None and unit.kind == "person":
        raise ConfigError("eval.target", target, "a forecast row per person would tell who is in the city, which "
                          "the person unit hides: forecast places (eval.target=place)")
    if target == "person":
        raise ConfigError("eval.target", target, f"privacy={NAME} forecasts places only (its group bound counts "
                          "the places one unit reaches): use eval.target=place")


def model_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """hetero_sage's settings, checked; dropout must be 0 (the per-example gradients are of the plain forward)."""
    cfg = hetero_config(MODEL, {k: v for k, v in dict(model_cfg).items() if k != "name"})
    if float(cfg["dropout"]) != 0:
        raise ConfigError("model.dropout", cfg["dropout"], f"privacy={NAME} trains without dropout: set "
                          "model.dropout=0")
    return cfg


def dpsgd_snapshot(city: HeteroData, record: Record, origin: int, lags: int, unit: Unit,
                   record_features: bool) -> HeteroData:
    """The snapshot at `origin`; record-derived columns dropped unless `record_features` (and the person's
    involvements always under the incident unit)."""
    snap = snapshot(city, record, origin, lags)
    if not record_features:
        snap["place"].x = snap["place"].x[:, -2:]  # grid position only
    if not record_features or unit.kind == "incident":
        snap["person"].x = snap["person"].x[:, :-2]  # the population's features only
    return snap


def dpsgd_privacy(data: HeteroData, unit: Unit, epsilon: float, delta: float | None, settings: dict[str, Any],
                  layers: int, fit_origins: list[int]) -> dict[str, Any]:
    """The privacy dict: group per fit, sensitivity, calibrated noise, steps composed, epsilon spent (None at inf)."""
    caps, clip = settings["max_degree"], float(settings["max_grad_norm"])
    count, what = aa.unit_count(data, unit)
    delta = float(delta) if delta is not None else 1.0 / (10 * max(count, 1))
    balls = da.ball_sizes(data, layers)
    places = int(data["place"].num_nodes)
    terms = da.reach_terms(unit, caps, layers, balls, bool(settings["record_features"]))
    reach = da.reach_bound(unit, caps, layers, balls, bool(settings["record_features"]), places)
    groups = [reach * t for t in fit_origins]
    steps = int(settings["steps"]) * len(fit_origins)
    person = unit.kind == "person"
    out: dict[str, Any] = {
        "mechanism": NAME, "privacy_unit": str(unit), "privacy_unit_detail": unit.detail,
        "target_epsilon": float(epsilon), "delta": delta, "delta_default": f"1/(10 N), N = {count} {what}",
        "layers": layers, "relations_read": ", ".join(r[1] for r in MESSAGE_RELATIONS),
        "record_features": bool(settings["record_features"]),
        "max_degree_knows": caps["knows"] if person else None, "max_degree_lives_at": 1 if person else None,
        "max_degree_frequents": caps["frequents"] if person else None,
        "max_degree_involved_in": caps["involved_in"] if person else None,
        "grid_ball_sizes": balls, "reach_per_origin": reach,
        "reach_terms": ", ".join(f"{k}: {v}" for k, v in terms.items()) + f" (at most {places} places)",
        "fits": len(fit_origins), "fit_origins": list(fit_origins), "group_size": groups,
        "max_grad_norm": clip, "sensitivity": [2.0 * g * clip for g in groups],
        "steps": int(settings["steps"]), "steps_composed": steps, "accountant": da.ACCOUNTANT,
        "forecasts_covered": False, "epsilon_covers_detail": COVERS}
    if math.isfinite(epsilon):
        z, spent = da.calibrate(epsilon, delta, steps, context=f"with privacy.steps={settings['steps']} over "
                                f"{len(fit_origins)} fit(s)")
        out.update(epsilon=spent, noise_multiplier=z)
    else:
        out.update(epsilon=None, delta=None, target_epsilon=None, noise_multiplier=0.0)
    out["noise_std"] = [out["noise_multiplier"] * s for s in out["sensitivity"]]
    return out


def fit_dpsgd(params: Params, graphs: list[Graph], labels: list[Tensor], layers: int, settings: dict[str, Any],
              noise_std: float, generator: torch.Generator, label: int) -> tuple[Params, list[dict[str, float]]]:
    """Full-batch DP-SGD: per step, every example's gradient clipped to C, summed, N(0, noise_std^2 I) added,
    divided by the number of examples; Adam. The logged loss reads private labels (diagnostics only)."""
    clip = float(settings["max_grad_norm"])
    examples = sum(int(y.numel()) for y in labels)
    optimizer = torch.optim.Adam(list(params.values()), lr=float(settings["lr"]))
    history = []
    for step in range(1, int(settings["steps"]) + 1):
        total = {n: torch.zeros_like(p) for n, p in params.items()}
        loss, clipped = 0.0, 0
        for graph, y in zip(graphs, labels):  # one snapshot per training origin, its places vectorised
            grads, f = per_example_grads(params, graph, layers, y)
            norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
            scale = (clip / norms.clamp(min=1e-12)).clamp(max=1.0)
            for n, g in grads.items():
                total[n] += torch.tensordot(scale, g, dims=1)
            loss += float(poisson_loss(f, y).sum())
            clipped += int((norms > clip).sum())
        for n, p in params.items():
            noise = noise_std * torch.randn(p.shape, generator=generator) if noise_std > 0 else 0.0
            p.grad = (total[n] + noise) / examples
        optimizer.step()
        history.append({"origin": label, "epoch": step, "train_loss": loss / examples,
                        "clipped_share": clipped / examples})
    return params, history


def forecast_hetero_dpsgd(data: HeteroData, unit: Unit, epsilon: float, delta: float | None,
                          settings: dict[str, Any], model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                          origins: list[int], seed: int, target: str = "place",
                          also: Sequence[list[int]] = ()) -> tuple[CityForecast, dict[str, Any]]:
    """Forecast every place's count of period t + 1 for t in `origins` under `unit`-level DP; return the forecast and
    the privacy dict (epsilon None when epsilon is inf: no noise)."""
    start = time.perf_counter()
    if unit.kind not in UNITS:
        raise ConfigError("privacy.unit", str(unit), f"privacy={NAME} protects one of " + ", ".join(UNITS))
    if also:
        raise ConfigError("audit", "feedback", f"privacy={NAME} does not account the patrol loop's refits")
    check_forecaster(MODEL, target, unit)
    epsilon = check_number("privacy.epsilon", epsilon, low=0.0, low_open=True)
    if delta is not None:
        check_number("privacy.delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    cfg = model_config(model_cfg)
    tcfg = train_config(train_cfg)
    origins = check_origins(origins, int(data.num_periods), first=1)
    check_incident_links(data, NAME)
    layers = int(cfg["num_layers"])
    ends = list(origins) if tcfg["refit"] == "origin" else [min(origins)]
    privacy = dpsgd_privacy(data, unit, epsilon, delta, settings, layers, ends)

    city = capped_city(data, unit, settings["max_degree"], seed)
    record = Record(city)
    graphs = [message_graph(dpsgd_snapshot(city, record, s, int(cfg["lags"]), unit, settings["record_features"]))
              for s in range(max(origins) + 1)]
    counts = record.counts("place")  # the capped record: the labels DP-SGD reads
    rows, history, params = [], [], None
    for t in origins:
        if params is None or tcfg["refit"] == "origin":
            end = t if tcfg["refit"] == "origin" else min(origins)
            torch.manual_seed(seed * 1000 + end)
            generator = torch.Generator().manual_seed(seed * 1000 + end + 3)
            std = privacy["noise_std"][ends.index(end)]
            params, curve = fit_dpsgd(init_params(graphs[0], cfg), graphs[:end], [counts[:, s + 1] for s in range(end)],
                                      layers, settings, std, generator, t)
            history += curve
        with torch.no_grad():
            rows.append(torch.exp(forward(params, graphs[t], layers)[0]))
    forecast = CityForecast(scores=torch.stack(rows).detach(), origins=origins, model=MODEL, target="place",
                            history=history, seconds=time.perf_counter() - start)
    return forecast, privacy


__all__ = ["HETERO_DPSGD_DEFAULTS", "MODEL", "NAME", "check_forecaster", "dpsgd_privacy", "dpsgd_snapshot",
           "fit_dpsgd", "forecast_hetero_dpsgd", "hetero_dpsgd_settings", "model_config"]
