"""The selection objective (`eval.objective`): a validation metric that a run writes, never a test or training score."""

from __future__ import annotations

from typing import Any

from gnnrisk.errors import ConfigError

# The metrics `classification_metrics` writes per split (gnnrisk/train/metrics.py); all higher-is-better.
OBJECTIVE_METRICS = ("acc", "auroc", "auprc", "f1")


def allowed_objectives(has_truth: bool | None) -> list[str]:
    """The validation metrics a run writes: `val_<metric>`, and `val_<metric>_true` on data with ground truth."""
    keys = [f"val_{m}" for m in OBJECTIVE_METRICS]
    return keys + [f"val_{m}_true" for m in OBJECTIVE_METRICS] if has_truth is not False else keys


def check_objective(objective: Any, has_truth: bool | None, field_name: str = "eval.objective") -> str | None:
    """`eval.objective`: null, or a validation metric this run writes (`has_truth` None: not known yet)."""
    if objective is None:
        return None
    allowed = allowed_objectives(has_truth)
    listing = "allowed: " + ", ".join(allowed)
    if not isinstance(objective, str):
        raise ConfigError(field_name, objective, listing)
    bare = objective.split("_", 1)[1] if objective.split("_", 1)[0] in ("train", "test") else None
    if objective.startswith("test_") or "_test_" in objective:
        raise ConfigError(field_name, objective, "selecting hyperparameters on the test split biases the reported "
                          "test numbers (the test split becomes part of the selection); use the validation "
                          f"split{f', e.g. val_{bare}' if bare else ''}; {listing}")
    if objective.startswith("train_"):
        raise ConfigError(field_name, objective, "a training-split score rewards overfitting; use the validation "
                          f"split, e.g. val_{bare}; {listing}")
    if objective not in allowed:
        if objective.endswith("_true") and objective in allowed_objectives(True):
            raise ConfigError(field_name, objective, f"this data has no ground truth (only the synthetic "
                              f"populations do); {listing}")
        raise ConfigError(field_name, objective, f"not a metric a run writes on the validation split; {listing}")
    return objective


__all__ = ["OBJECTIVE_METRICS", "allowed_objectives", "check_objective"]
