"""The study's objective: the validation metric and its direction, checked, and its value in a trial's run folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from gnnrisk.errors import ConfigError
from gnnrisk.results import ERROR_FILE, METRICS_FILE
from gnnrisk.train.objective import allowed_objectives, check_objective

# Data sources that generate a ground truth `y_true` besides the recorded `y` (so `val_*_true` exists).
GROUND_TRUTH_DATA = ("synthetic", "synthetic_temporal")
DIRECTIONS = ("maximize", "minimize")


def check_direction(direction: Any, objective: str) -> str:
    """`hydra.sweeper.direction`: maximize, since every allowed objective is higher-is-better."""
    if direction not in DIRECTIONS:
        raise ConfigError("hydra.sweeper.direction", direction, "expected one of " + ", ".join(DIRECTIONS))
    if direction == "minimize":
        raise ConfigError("hydra.sweeper.direction", direction, f"{objective} is higher-is-better (accuracy, "
                          "AUROC, AUPRC, F1): minimizing it selects the worst configuration; expected maximize")
    return direction


def checked_objective(cfg: DictConfig) -> str:
    """The composed config's `eval.objective`: required by the sweeper, a validation metric of its data."""
    objective = cfg.get("eval", {}).get("objective")
    has_truth = cfg.get("data", {}).get("name") in GROUND_TRUTH_DATA
    if objective is None:
        raise ConfigError("eval.objective", None, "hydra/sweeper=optuna needs the validation metric to optimise, "
                          "e.g. eval.objective=val_auroc; allowed: " + ", ".join(allowed_objectives(has_truth)))
    return str(check_objective(objective, has_truth))


def read_objective(run_dir: Path, objective: str) -> tuple[float | None, str | None]:
    """(the objective from the run folder's metrics.json, None), or (None, why the trial failed)."""
    from gnnrisk.results import load_json_object

    if not (run_dir / METRICS_FILE).exists():
        error, _ = load_json_object(run_dir / ERROR_FILE) if (run_dir / ERROR_FILE).exists() else (None, None)
        return None, f"run failed: {error.get('error')}" if error else f"no {METRICS_FILE} (the job did not finish)"
    metrics, why = load_json_object(run_dir / METRICS_FILE)
    if metrics is None:
        return None, f"{METRICS_FILE} {why}"
    value = metrics.get(objective)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"{objective} is {value!r} in {METRICS_FILE} (undefined on this validation split)"
    return float(value), None
