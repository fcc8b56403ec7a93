"""One experiment run: data -> mechanism (training) -> evaluation -> later stages -> results files."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.audit.group_metrics import group_accuracy, group_fairness
from gnnrisk.city_run import run_city, validate_city_run
from gnnrisk.data import build_dataset
from gnnrisk.data.city.loader import is_city
from gnnrisk.data.temporal import is_temporal
from gnnrisk.errors import ConfigError, Refusals, check_number
from gnnrisk.presets import apply_preset
from gnnrisk.logger import validate_logger
from gnnrisk.models import CITY_MODELS, STATIC_MODELS, is_plugin_model, validate_model
from gnnrisk.models.recurrent import TEMPORAL_MODELS
from gnnrisk.privacy import MECHANISMS, Mechanism, TrainedModel, build_mechanism
from gnnrisk.privacy.city.mechanisms import CITY_ONLY_MECHANISMS
from gnnrisk.privacy.diagnostics import drowned_parts
from gnnrisk.protocol import check_protocol
from gnnrisk.results import STAGING_DIR, write_metrics, write_run_start, write_training_record
from gnnrisk.train.city_forecast import CityForecast
from gnnrisk.train.forecast import Forecast, validate_window
from gnnrisk.train.loop import validate_train_cfg
from gnnrisk.train.metrics import classification_metrics
from gnnrisk.train.objective import check_objective
from gnnrisk.utils.files import write_text_atomic
from gnnrisk.utils.runtime import apply_threads, resolve_device, seed_everything

log = logging.getLogger(__name__)

# Stages that run after training, in this order. A stage is enabled by its config group
# (`explain=...`, `attack=...`, `audit=...`; `none` disables it) and implemented by
# `gnnrisk.<group>.run_stage(stage_cfg, data, trained, run_dir, seed) -> dict` of flat metrics,
# after `gnnrisk.<group>.validate_stage(stage_cfg, data, model_name)` accepted its config.
STAGES = ("explain", "attack", "audit")


def enabled_stages(cfg: DictConfig) -> list[tuple[DictConfig, Any]]:
    """The (stage config, stage module) of every enabled post-training stage, in order."""
    stages = []
    for group in STAGES:
        stage_cfg = cfg.get(group)
        if stage_cfg is not None and stage_cfg.get("name", "none") != "none":
            stages.append((stage_cfg, importlib.import_module(f"gnnrisk.{group}")))
    return stages


def validate_run(cfg: DictConfig, data: Data) -> Mechanism:
    """Everything a run can refuse, checked before any training: returns the configured mechanism.

    Mechanism, model and train settings, then each enabled stage's `validate_stage(stage_cfg, data,
    model_name)`. Independent checks all run, so that every bad field is refused at once (ConfigErrors).
    """
    refusals = Refusals()
    with refusals.check():
        validate_logger(cfg.get("logger"))  # logger name, its packages, a writable logger.dir
    with refusals.check():
        check_protocol(cfg)
    mechanism: Mechanism | None = None
    with refusals.check():
        if cfg.privacy.name in CITY_ONLY_MECHANISMS:
            raise ConfigError("privacy.name", cfg.privacy.name, f"runs on the city's typed relations only "
                              f"(data=synthetic_city); this is {data.name}")
        mechanism = build_mechanism(cfg.privacy)
    with refusals.check():
        keep_diagnostics(cfg.privacy)
    model_ok = False
    with refusals.check():
        validate_model(cfg.model)
        model_ok = True
    temporal = is_temporal(data)
    if mechanism is not None and model_ok:  # the mechanism's checks read the (valid) model settings
        with refusals.check():
            check_model_for_data(cfg, data, mechanism)
        with refusals.check():
            mechanism.check_model(cfg.model)
    if mechanism is not None:
        with refusals.check():
            mechanism.check_data(data)
    with refusals.check():
        # a plug-in model's depth is its own business: its fan-outs are not checked against it
        sampled_layers = (None if not model_ok or cfg.model.name in ("mlp", *TEMPORAL_MODELS)
                          or is_plugin_model(cfg.model.name) else int(cfg.model.num_layers))
        validate_train_cfg(cfg.train, sampled_layers)
    with refusals.check():
        check_selection_rate(cfg.get("eval", {}).get("selection_rate"))
    with refusals.check():
        target = cfg.get("eval", {}).get("target", "place")
        if target != "place":
            raise ConfigError("eval.target", target, "person forecasts need the city (data=synthetic_city); "
                              "here: place (the default, not read outside the city)")
    with refusals.check():
        check_objective(cfg.get("eval", {}).get("objective"), getattr(data, "y_true", None) is not None)
    if temporal:
        with refusals.check():
            validate_window(cfg.get("eval", {}), int(data.num_periods))
    for stage_cfg, module in enabled_stages(cfg):
        with refusals.check():
            if temporal and stage_cfg.name not in getattr(module, "TEMPORAL_MEMBERS", ()):
                group = module.__name__.rsplit(".", 1)[-1]
                member = getattr(module, "member_of", lambda c: c.name)(stage_cfg)  # attack: the selected ones
                raise ConfigError(group, member, f"not available on data with periods ({data.name}); "
                                  "available: " + ", ".join(("none", *getattr(module, "TEMPORAL_MEMBERS", ()))))
            module.validate_stage(stage_cfg, data, cfg.model.name)
    refusals.raise_any()
    assert mechanism is not None  # build_mechanism refused otherwise
    return mechanism


def check_model_for_data(cfg: DictConfig, data: Data, mechanism: Mechanism) -> None:
    """Forecasting models need data with periods, and data with periods a mechanism that can release them."""
    name = cfg.model.name
    if name in CITY_MODELS:
        raise ConfigError("model.name", name, f"a hotspot forecaster for the city needs data=synthetic_city (this "
                          f"is {data.name}); models here: " + ", ".join(TEMPORAL_MODELS if is_temporal(data)
                                                                          else STATIC_MODELS))
    if not is_temporal(data):
        if name in TEMPORAL_MODELS:
            raise ConfigError("model.name", name, f"{name} forecasts over periods and needs data with periods "
                              "(data=synthetic_temporal); models for one snapshot: " + ", ".join(STATIC_MODELS))
        return
    if not mechanism.temporal:
        able = [m for m in MECHANISMS if build_mechanism_class(m).temporal]
        raise ConfigError("privacy.name", mechanism.name, f"not available on data with periods ({data.name}); "
                          "available: " + ", ".join(able))
    if cfg.train.batch_size is not None:
        raise ConfigError("train.batch_size", cfg.train.batch_size, "forecasters train full batch over periods: "
                          "expected null")


def build_mechanism_class(name: str) -> type[Mechanism]:
    """The class registered under `name` (without building it)."""
    module, cls = MECHANISMS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def keep_diagnostics(privacy_cfg: DictConfig) -> bool:
    """`privacy.diagnostics`: write what a node-level private run computed outside its budget (labelled)?"""
    keep = privacy_cfg.get("diagnostics", True)
    if not isinstance(keep, bool):
        raise ConfigError("privacy.diagnostics", keep, "expected true (write diagnostics/, labelled) or false")
    return keep


def run_stages(cfg: DictConfig, data: Data, trained: TrainedModel, run_dir: Path, seed: int) -> dict[str, Any]:
    """Run every enabled post-training stage and collect their metrics; their files appear only if all succeed.

    Stages write into a staging folder inside `run_dir`, moved into place after the last stage:
    a run that fails in a stage leaves no stage outputs behind.
    """
    staging = run_dir / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        out: dict[str, Any] = {}
        for stage_cfg, module in enabled_stages(cfg):
            out.update(module.run_stage(stage_cfg, data, trained, staging, seed))
        for path in sorted(staging.iterdir()):
            os.replace(path, run_dir / path.name)
        return out
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_selection_rate(selection_rate: Any) -> float | None:
    """`eval.selection_rate`: null, or the share in (0, 1) of test nodes flagged."""
    if selection_rate is None:
        return None
    return check_number("eval.selection_rate", selection_rate, low=0.0, high=1.0, low_open=True, high_open=True)


def decision_threshold(prob_pos: torch.Tensor, selection_rate: float | None) -> float:
    """0.5 (the argmax) by default; with a selection rate, the score above which that share is flagged."""
    rate = check_selection_rate(selection_rate)
    if rate is None:
        return 0.5
    return float(torch.quantile(prob_pos.double(), 1.0 - rate))


def evaluate(prob: torch.Tensor, data: Data, selection_rate: float | None = None) -> dict[str, Any]:
    """Utility on train/val/test against `y`, and on synthetic data against `y_true`; fairness on test."""
    out: dict[str, Any] = {}
    has_truth = getattr(data, "y_true", None) is not None
    for split in ("train", "val", "test"):
        mask = getattr(data, f"{split}_mask")
        for key, value in classification_metrics(prob[mask], data.y[mask]).items():
            out[f"{split}_{key}"] = value
        if has_truth:
            for key, value in classification_metrics(prob[mask], data.y_true[mask]).items():
                out[f"{split}_{key}_true"] = value
    group = getattr(data, "group", None)
    if group is not None and prob.size(1) > 2:  # a multi-class task: accuracy per group on the test nodes
        names = list(getattr(data, "group_names", None) or [str(g) for g in range(int(group.max()) + 1)])
        out.update(group_accuracy(prob[data.test_mask], data.y[data.test_mask], group[data.test_mask], names))
    if group is not None and prob.size(1) == 2:
        names = list(getattr(data, "group_names", None) or [str(g) for g in range(int(group.max()) + 1)])
        m = data.test_mask
        threshold = decision_threshold(prob[m, 1], selection_rate)
        out["decision_threshold"] = threshold
        out.update(group_fairness(prob[m, 1], data.y[m], group[m], names, threshold=threshold))
        if has_truth:
            out.update(group_fairness(prob[m, 1], data.y_true[m], group[m], names, suffix="_true",
                                      threshold=threshold))
    return out


@dataclass
class PreparedRun:
    """A run that passed every check: the data built, the mechanism configured, nothing trained."""

    seed: int
    threads: int
    device: torch.device
    data: Data
    mechanism: Mechanism
    noise_seed: int | None = None   # `noise_seed`: the mechanism's seed (model init and noise); None = `seed`

    @property
    def mechanism_seed(self) -> int:
        """The seed passed to the mechanism: `noise_seed` when set, else the run's `seed` (data and split)."""
        return self.seed if self.noise_seed is None else self.noise_seed


def check_noise_seed(value: Any) -> int | None:
    """`noise_seed`: null (the run's seed) or an integer >= 0."""
    return None if value is None else int(check_number("noise_seed", value, low=0, integer=True))


def prepare_run(cfg: DictConfig, workers: int = 1) -> PreparedRun:
    """Check everything the run can refuse and build its data, writing nothing (ConfigError/DataError)."""
    cfg = apply_preset(cfg)
    seed = int(check_number("seed", cfg.seed, low=0, integer=True))
    noise_seed = check_noise_seed(cfg.get("noise_seed"))
    threads = apply_threads(cfg.get("threads", "auto"), workers)
    seed_everything(seed)
    device = resolve_device(cfg.device)
    data = build_dataset(cfg.data, seed)
    if is_city(data):
        log.info("data %s: %d people, %d places, %d incidents over %d periods", data.name, data["person"].num_nodes,
                 data["place"].num_nodes, data["incident"].num_nodes, data.num_periods)
        validate_logger(cfg.get("logger"))
        return PreparedRun(seed, threads, device, data, validate_city_run(cfg, data), noise_seed)
    if is_temporal(data):
        log.info("data %s: %d nodes, %d periods, %d tie intervals, %d features", data.name, data.num_nodes,
                 data.num_periods, data.tie_index.size(1), data.num_features)
    else:
        log.info("data %s: %d nodes, %d directed edges, %d features", data.name, data.num_nodes,
                 data.num_edges, data.num_features)
    return PreparedRun(seed, threads, device, data, validate_run(cfg, data), noise_seed)


def split_counts(prob: torch.Tensor, data: Data) -> dict[str, int]:
    """The split sizes and the count of correctly classified validation nodes (argmax), which a private
    hyperparameter selection adds its noise to (gnnrisk/private_selection/score.py)."""
    val = data.val_mask.cpu()
    correct = int((prob[val].argmax(1) == data.y.cpu()[val]).sum())
    return {"num_train": int(data.train_mask.sum()), "num_val": int(val.sum()), "num_test": int(data.test_mask.sum()),
            "val_correct": correct}


@dataclass
class ExperimentResult:
    """A finished run: its metrics (as in metrics.json), the data it used and the trained model."""

    metrics: dict[str, Any]
    data: Data
    trained: TrainedModel | Forecast | CityForecast  # Forecast: data with periods; CityForecast: the city


FORECAST_FILE = "forecast.csv"
UTILITY_PREFIXES = ("train_", "val_", "test_")


def forecast_targets(data: Data, origins: list[int], horizon: int) -> Data:
    """The node table that `evaluate` scores for forecasts made at `origins` for origin + horizon.

    Row (origin, node) carries that target period's record and truth, and the node's masks and group.
    """
    table = Data(num_nodes=len(origins) * int(data.num_nodes))
    table.y = torch.cat([data.y[:, t + horizon] for t in origins])
    if getattr(data, "y_true", None) is not None:
        table.y_true = torch.cat([data.y_true[:, t + horizon] for t in origins])
    for key in ("train_mask", "val_mask", "test_mask", "group"):
        table[key] = getattr(data, key).repeat(len(origins))
    table.group_names = getattr(data, "group_names", None)
    return table


def evaluate_forecast(forecast: Forecast, data: Data, selection_rate: float | None) -> tuple[dict[str, Any], str]:
    """Metrics pooled over origins: the first horizon under today's keys, every horizon as `h<h>_<key>`;
    and the per-origin table (CSV text) of every horizon and split."""
    out: dict[str, Any] = {"horizons": forecast.window.horizons, "forecast_origins": forecast.window.origins}
    rows = []
    for k, h in enumerate(forecast.window.horizons):
        prob = torch.cat([forecast.probs[(t, h)] for t in forecast.window.origins])
        scores = evaluate(prob, forecast_targets(data, forecast.window.origins, h), selection_rate)
        if k == 0:
            out.update(scores)
        out.update({f"h{h}_{key}": v for key, v in scores.items() if key.startswith(UTILITY_PREFIXES)})
        for t in forecast.window.origins:
            one = evaluate(forecast.probs[(t, h)], forecast_targets(data, [t], h), selection_rate)
            rows.append({"origin": t, "horizon": h, "target_period": t + h,
                         **{key: v for key, v in one.items() if key.startswith(UTILITY_PREFIXES)}})
    import pandas as pd

    return out, pd.DataFrame(rows).to_csv(index=False)


def run_forecast(cfg: DictConfig, run: PreparedRun, run_dir: Path) -> ExperimentResult:
    """A run on data with periods: rolling-origin forecasters, scored per horizon; forecast.csv per origin."""
    data = run.data.to(run.device)
    window = validate_window(cfg.get("eval", {}), int(data.num_periods))
    forecast = run.mechanism.train_forecaster(data, cfg.model, cfg.train, window, run.mechanism_seed)
    fit = forecast.fit
    metrics: dict[str, Any] = {
        "model": cfg.model.name, "dataset": data.name, "seed": run.seed, "device": str(run.device),
        "num_nodes": int(data.num_nodes), "num_periods": int(data.num_periods),
        "num_edges": int(data.tie_index.size(1)), "epochs": fit.epochs, "best_epoch": fit.best_epoch,
        "train_seconds": fit.train_seconds, "threads": run.threads,
        **({} if run.noise_seed is None else {"noise_seed": run.noise_seed}),
        **({} if cfg.get("preset") is None else {"preset": cfg.preset}),
    }
    metrics.update(forecast.privacy)
    scores, table = evaluate_forecast(forecast, data.cpu(), cfg.get("eval", {}).get("selection_rate"))
    metrics.update(scores)
    metrics.update(run_stages(cfg, data, forecast, run_dir, run.seed))
    metrics["epsilon_covers"] = None if forecast.privacy.get("epsilon") is None else run.mechanism.releases
    write_text_atomic(run_dir / FORECAST_FILE, table)
    metrics.update(write_training_record(run_dir, fit.history, forecast.diagnostics, forecast.privacy,
                                         keep_diagnostics(cfg.privacy)))
    write_metrics(run_dir, metrics)
    return ExperimentResult(metrics, data, forecast)


def run_city_forecast(cfg: DictConfig, run: PreparedRun, run_dir: Path) -> ExperimentResult:
    """A run on the city: place-level forecasts at the latest origins, scored; forecast.csv and history.csv."""
    scores, forecast = run_city(cfg, run.data, run.mechanism_seed, run_dir, run.mechanism)
    metrics: dict[str, Any] = {
        "model": cfg.model.name, "dataset": run.data.name, "seed": run.seed, "device": "cpu",
        **({} if run.noise_seed is None else {"noise_seed": run.noise_seed}),
        **({} if cfg.get("preset") is None else {"preset": cfg.preset}), "threads": run.threads, **scores,
    }
    metrics.update(write_training_record(run_dir, forecast.history, {}, scores, keep_diagnostics(cfg.privacy)))
    write_metrics(run_dir, metrics)
    return ExperimentResult(metrics, run.data, forecast)


def warn_if_drowned(privacy: dict[str, Any]) -> None:
    """One warning line when a private mechanism's noise dwarfs its signal (`gnnrisk.privacy.diagnostics`)."""
    parts = drowned_parts(privacy)
    if parts:
        log.warning("privacy=%s: the noise drowns the signal in %s: what that part learned or released cannot be "
                    "told from noise (docs/config/privacy.md#diagnostics)", privacy.get("mechanism"), "; ".join(parts))


def run_experiment(cfg: DictConfig, run_dir: Path, workers: int = 1) -> dict[str, Any]:
    """Run the configured experiment end to end, write its results into `run_dir`, return its metrics.

    `workers` is how many runs share this machine (a parallel launcher's worker count), for `threads=auto`.
    """
    return execute_experiment(cfg, run_dir, workers).metrics


def execute_experiment(cfg: DictConfig, run_dir: Path, workers: int = 1) -> ExperimentResult:
    """`run_experiment`, also returning the data and the trained model (`gnnrisk-run` and `gnnrisk.run`)."""
    cfg = apply_preset(cfg)  # `preset=tiny`: the sizes capped in the config that config.yaml records
    write_run_start(run_dir, cfg)
    run = prepare_run(cfg, workers)
    if is_city(run.data):
        return run_city_forecast(cfg, run, run_dir)
    if is_temporal(run.data):
        return run_forecast(cfg, run, run_dir)
    seed, threads, device, mechanism = run.seed, run.threads, run.device, run.mechanism
    data = run.data.to(device)
    trained: TrainedModel = mechanism.train(data, cfg.model, cfg.train, run.mechanism_seed)
    prob = trained.predict_proba().cpu()
    metrics: dict[str, Any] = {
        "model": cfg.model.name, "dataset": data.name, "seed": seed, "device": str(device),
        **({} if run.noise_seed is None else {"noise_seed": run.noise_seed}),
        **({} if cfg.get("preset") is None else {"preset": cfg.preset}),
        "num_nodes": int(data.num_nodes), "num_edges": int(data.num_edges) // 2,
        "epochs": trained.fit.epochs, "best_epoch": trained.fit.best_epoch,
        "train_seconds": trained.fit.train_seconds, "threads": threads,
        **split_counts(prob, data),
    }
    metrics.update(trained.privacy)
    warn_if_drowned(trained.privacy)
    metrics.update(evaluate(prob, data.cpu(), cfg.get("eval", {}).get("selection_rate")))
    metrics.update(run_stages(cfg, data, trained, run_dir, seed))
    metrics["epsilon_covers"] = None if trained.privacy.get("epsilon") is None else mechanism.releases
    metrics.update(write_training_record(run_dir, trained.fit.history, trained.diagnostics, trained.privacy,
                                         keep_diagnostics(cfg.privacy)))
    write_metrics(run_dir, metrics)
    return ExperimentResult(metrics, data, trained)
