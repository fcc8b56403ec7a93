"""The pipeline's path for the city (data=synthetic_city): its checks, and a run of a forecaster.

A city run forecasts, at each of the latest `eval.origins` periods t, the incident count of period
t + 1 of every place (`eval.target: place`, hotspots) or every person (`eval.target: person`, their
involvements) from what was recorded up to t (`gnnrisk.train.city_forecast`), and scores the forecasts
against the truth (every incident, the true rate) and against the record (`gnnrisk.train.hotspot_metrics`).
`audit=feedback` adds the patrol feedback loop of `gnnrisk.audit.city_feedback` (patrols follow the
run's place forecaster, the record follows the patrols); `explain=gnnexplainer|saliency|integrated_gradients`
explains the GNN's forecast at the latest origin on the typed links and scores the masks against the
planted triggering links (`gnnrisk.explain.city`). `privacy=` picks a city mechanism
(`gnnrisk.privacy.city.mechanisms`: graph perturbation of one relation, or aggregation perturbation at a
person, incident or edge unit); the forecasters, and the patrol loop's, read only what it releases.
`attack=canary` audits the run's unit with canaries; `attack=linkteller|lsa|mia` (several at once:
`attack=[lsa,mia]`) attack the run's forecaster per relation or node type (`gnnrisk.privacy.city.audit_stage`).
The other attacks do not run on the city, nor an explainer beside a private mechanism: each is refused in one
line before anything is trained.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import HeteroData

from gnnrisk.audit.city_feedback import (
    loop_origins,
    run_city_feedback,
    validate_city_feedback,
)
from gnnrisk.errors import ConfigError, Refusals, check_number
from gnnrisk.explain.city import (
    ALGORITHMS,
    NothingToExplain,
    check_explainable,
    explain_fitted,
    fit_for_explanation,
)
from gnnrisk.models import CITY_MODELS, validate_model
from gnnrisk.models.hetero import HETERO_MODELS
from gnnrisk.models.recurrent import TEMPORAL_MODELS
from gnnrisk.privacy.city.audit_stage import run_city_attack, validate_city_attack
from gnnrisk.privacy.city.mechanisms import CityMechanism, build_city_mechanism
from gnnrisk.results import DIAGNOSTICS_DIR
from gnnrisk.train.city_forecast import (
    CityForecast,
    check_origins,
    check_target,
    train_config,
)
from gnnrisk.train.hotspot_metrics import score_forecast
from gnnrisk.utils.files import write_text_atomic

log = logging.getLogger(__name__)
FORECAST_FILE = "forecast.csv"
FORECAST_LABEL = "FORECASTS_NOT_COVERED_BY_EPSILON.txt"
FORECASTERS = (*CITY_MODELS, *TEMPORAL_MODELS)  # the baselines, the GNNs, and the temporal module's recurrent models
STAGES = ("explain", "attack", "audit")
CITY_STAGES = {"audit": ("feedback",), "explain": ALGORITHMS, "attack": ("attacks",)}  # what runs on the city
# (the attack group's node is named `attacks`: its members on the city, canary, lsa, linkteller and mia, are
# checked apart by `validate_city_attack`)
EXPLANATIONS_FILE = "city_explanations.csv"


def city_origins(eval_cfg: Any, num_periods: int, model: str) -> list[int]:
    """The latest `eval.origins` origins t (each forecasting t + 1), checked against the city's periods."""
    first = 1 if model in (*HETERO_MODELS, *TEMPORAL_MODELS) else 0  # a trained model needs an earlier origin
    most = num_periods - 1 - first
    count = (eval_cfg or {}).get("origins", 3)
    check_number("eval.origins", count, low=1, high=max(most, 1), integer=True)
    if most < 1:
        raise ConfigError("data.periods", num_periods, f"model={model} needs at least {2 + first} periods")
    return check_origins(list(range(num_periods - 1 - int(count), num_periods - 1)), num_periods, first)


def validate_city_run(cfg: DictConfig, data: HeteroData) -> CityMechanism:
    """Refuse what cannot run on the city, every bad field at once: model, mechanism, stages, train and eval keys;
    return the run's mechanism, built."""
    name = cfg.model.name
    refusals = Refusals()
    model_ok = False
    with refusals.check():
        if name not in FORECASTERS:
            raise ConfigError("model.name", name, "not a forecaster for the city (data=synthetic_city); "
                              "available: " + ", ".join(FORECASTERS))
        validate_model(cfg.model)
        model_ok = True
    mechanism: CityMechanism | None = None
    with refusals.check():
        mechanism = build_city_mechanism(cfg.privacy)
    if mechanism is not None and model_ok:
        with refusals.check():
            mechanism.check(name, city_target(cfg.get("eval"), name))
    if mechanism is not None and mechanism.name != "none":
        with refusals.check():
            if explain_on(cfg):
                raise ConfigError("explain", cfg.explain.name, "explanations on the city are scored against the "
                                  "true typed links, which a private mechanism does not release; use privacy=none")
        with refusals.check():
            if feedback_on(cfg) and mechanism.releases not in (None, "graph") and not mechanism.refits_in_loop:
                raise ConfigError("audit", "feedback", f"the patrol loop refits its forecaster every period: under "
                                  f"privacy={mechanism.name} each refit is a new release, whose composition is not "
                                  "accounted yet; use privacy=hetero_gap, edgerand or lapgraph")
    for group in STAGES:
        stage = cfg.get(group)
        if stage is not None and stage.get("name", "none") not in ("none", *CITY_STAGES.get(group, ())):
            with refusals.check():
                raise ConfigError(group, stage.name, "not available on the city (data=synthetic_city); "
                                  "available: " + ", ".join(("none", *CITY_STAGES.get(group, ()))))
    if attack_on(cfg):  # the member is checked whatever the mechanism; the unit only with a valid one
        with refusals.check():
            validate_city_attack(cfg.attack, mechanism, city_target(cfg.get("eval"), name),
                                 name if model_ok else None, data, cfg.train)
    if feedback_on(cfg):
        with refusals.check():
            if city_target(cfg.get("eval"), name) != "place":
                raise ConfigError("eval.target", "person", "audit=feedback sends patrols to places: it needs "
                                  "a place forecaster (eval.target=place)")
            validate_city_feedback(cfg.audit, data, name)
    if explain_on(cfg) and cfg.explain.name in ALGORITHMS:  # other members are refused above
        with refusals.check():
            check_explainable(name, cfg.explain.name, int(cfg.model.get("num_layers", 2)))
        with refusals.check():
            check_number("explain.num_nodes", cfg.explain.get("num_nodes", 50), low=1, integer=True)
        with refusals.check():
            check_number("explain.epochs", cfg.explain.get("epochs", 100), low=1, integer=True)
        with refusals.check():
            check_number("explain.n_steps", cfg.explain.get("n_steps", 20), low=1, integer=True)
    with refusals.check():
        train_config(cfg.train)
    if name in FORECASTERS:
        with refusals.check():
            city_target(cfg.get("eval"), name)
        with refusals.check():
            city_origins(cfg.get("eval"), int(data.num_periods), name)
    refusals.raise_any()
    assert mechanism is not None  # refused above otherwise
    return mechanism


def explain_on(cfg: DictConfig) -> bool:
    """Whether the run explains its GNN's forecasts on the typed links."""
    return cfg.get("explain") is not None and cfg.explain.get("name", "none") != "none"


def attack_on(cfg: DictConfig) -> bool:
    """Whether the run attacks its forecaster or audits its unit (`attack=canary|lsa|linkteller|mia`)."""
    return cfg.get("attack") is not None and cfg.attack.get("name", "none") != "none"


def feedback_on(cfg: DictConfig) -> bool:
    """Whether the run's audit is the patrol feedback loop."""
    return cfg.get("audit") is not None and cfg.audit.get("name", "none") == "feedback"


def city_target(eval_cfg: Any, model: str) -> str:
    """`eval.target` (default place), checked against the model."""
    return check_target(model, (eval_cfg or {}).get("target", "place"))


def city_model_config(cfg: DictConfig) -> dict[str, Any]:
    """The model group as a plain dict (the forecasters take a mapping)."""
    return {str(k): v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()}


FORECAST_NOTE = """NOT COVERED BY THE RUN'S EPSILON.

forecast.csv holds the forecasts of {mechanism} (unit {unit}, epsilon {epsilon}). The epsilon covers the
trained weights only: each forecast applies them to its origin's snapshot of the city, which holds the
protected ties and records without noise, so the forecasts themselves are not private. Do not publish them
as part of a private release.
"""


def write_forecast(run_dir: Path, forecast: CityForecast, data: HeteroData, privacy: dict[str, Any],
                   releases: str | None) -> str:
    """forecast.csv: one row per origin and target node, the score (and a place's grid position); under a
    mechanism whose epsilon covers its weights only, into diagnostics/ with a label. Returns its path in the run."""
    origins, target = len(forecast.origins), forecast.target
    units = data[target].num_nodes
    columns = {
        "origin": torch.tensor(forecast.origins).repeat_interleave(units).numpy(),
        "period": (torch.tensor(forecast.origins) + 1).repeat_interleave(units).numpy(),
        target: torch.arange(units).repeat(origins).numpy(),
    }
    if target == "place":
        pos = data["place"].pos.long().cpu()
        columns.update(row=pos[:, 0].repeat(origins).numpy(), col=pos[:, 1].repeat(origins).numpy())
    table = pd.DataFrame({**columns, "score": forecast.scores.reshape(-1).numpy()})
    folder = run_dir
    if releases == "weights" and privacy.get("epsilon") is not None:
        folder = run_dir / DIAGNOSTICS_DIR
        write_text_atomic(folder / FORECAST_LABEL, FORECAST_NOTE.format(
            mechanism=privacy.get("mechanism"), unit=privacy.get("privacy_unit"), epsilon=privacy.get("epsilon")))
    write_text_atomic(folder / FORECAST_FILE, table.to_csv(index=False))
    return (folder / FORECAST_FILE).relative_to(run_dir).as_posix()


def run_city(cfg: DictConfig, data: HeteroData, seed: int, run_dir: Path, mechanism: CityMechanism | None = None
             ) -> tuple[dict[str, Any], CityForecast]:
    """Forecast and score the city's places at the latest origins under the run's mechanism; write forecast.csv;
    return (metrics with the privacy fields, forecast). `seed` is the mechanism's (model init and noise)."""
    name = cfg.model.name
    mechanism = mechanism or build_city_mechanism(cfg.privacy)
    origins = city_origins(cfg.get("eval"), int(data.num_periods), name)
    loop = []  # the patrol loop's refits, each a release that the run's epsilon must cover
    if feedback_on(cfg) and mechanism.refits_in_loop:
        loop = [[t] for t in loop_origins(validate_city_feedback(cfg.audit, data, name), int(data.num_periods))]
    forecast, privacy = mechanism.forecast(data, name, city_model_config(cfg), cfg.train, origins, seed,
                                           city_target(cfg.get("eval"), name), also=loop)
    incidents = data["incident"]
    metrics: dict[str, Any] = {
        "num_people": int(data["person"].num_nodes), "num_places": int(data["place"].num_nodes),
        "num_incidents": int(incidents.num_nodes), "recorded_share": float(incidents.recorded.float().mean()),
        "periods": int(data.num_periods), "forecast_origins": origins, "target": forecast.target,
        "train_seconds": forecast.seconds,
        **score_forecast(forecast, data),
        **privacy,
        "epsilon_covers": None if privacy.get("epsilon") is None else mechanism.releases,
    }
    metrics["forecast_file"] = write_forecast(run_dir, forecast, data, privacy, mechanism.releases)
    if attack_on(cfg):
        metrics.update(run_city_attack(cfg.attack, data, mechanism, origins, seed, forecast=forecast,
                                       model_cfg=city_model_config(cfg), train_cfg=cfg.train))
    if explain_on(cfg):
        metrics.update(explain_city_run(cfg, data, origins[-1], seed, run_dir))
    if feedback_on(cfg):  # the loop's forecaster reads the released city (graph perturbation) or refits privately
        released, _ = mechanism.release(data, seed)
        refit = (mechanism.loop_forecaster(city_model_config(cfg), cfg.train, seed, privacy)
                 if mechanism.refits_in_loop else None)
        metrics.update(run_city_feedback(cfg.audit, released, name, city_model_config(cfg), cfg.train, run_dir, seed,
                                         forecaster=refit))
    return metrics, forecast


def explain_city_run(cfg: DictConfig, data: HeteroData, origin: int, seed: int, run_dir: Path) -> dict[str, float]:
    """Explain the GNN trained at `origin` (as the forecaster trains per origin) for at most `explain.num_nodes`
    target nodes with a planted triggering link in reach; write city_explanations.csv; return `explain_*` metrics."""
    ex = cfg.explain
    try:
        fitted = fit_for_explanation(data, cfg.model.name, city_model_config(cfg), cfg.train, origin, seed,
                                     city_target(cfg.get("eval"), cfg.model.name), ex.name, ex.get("num_nodes", 50))
    except NothingToExplain as err:  # the draw's, not the user's: the run finishes with the forecast alone
        log.warning("explain=%s: nothing to explain: %s; explain_num_nodes is 0", ex.name, err)
        return {"explain_num_nodes": 0.0, "explain_eligible_nodes": 0.0}
    metrics, table = explain_fitted(fitted, ex.name, seed, ex.get("epochs", 100), ex.get("n_steps", 20))
    write_text_atomic(run_dir / EXPLANATIONS_FILE, table.to_csv(index=False))
    return metrics
