"""Fairness audits: group metrics against observed labels and ground truth, feedback loops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.errors import check_choice

AUDITS = ("fairness", "feedback")
TEMPORAL_MEMBERS = ("feedback",)  # the audits that run on data with periods


def run_stage(stage_cfg: DictConfig, data: Data, trained: Any, run_dir: Path, seed: int) -> dict[str, Any]:
    """Run the audit that `stage_cfg.name` names and return its flat metrics."""
    name = check_choice("audit.name", stage_cfg.name, AUDITS)
    if name == "fairness":
        from gnnrisk.audit.fairness import run_fairness
        return run_fairness(stage_cfg, data, trained, run_dir, seed)
    from gnnrisk.audit.feedback import run_feedback
    return run_feedback(stage_cfg, data, trained, run_dir, seed)


def validate_stage(stage_cfg: DictConfig, data: Data, model_name: str | None = None) -> None:
    """Check the audit config against the dataset before any training (raises ConfigError).

    `model_name` (the stages' common signature) does not matter to the audits.
    """
    name = check_choice("audit.name", stage_cfg.name, AUDITS)
    if name == "fairness":
        from gnnrisk.audit.fairness import validate
        validate(stage_cfg)
    else:
        from gnnrisk.audit.feedback import validate
        validate(stage_cfg, data)


__all__ = ["AUDITS", "run_stage", "validate_stage"]
