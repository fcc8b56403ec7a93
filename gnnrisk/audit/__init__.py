"""Fairness audits: group metrics against observed labels and ground truth, feedback loops.

An audit is a module with `run(stage_cfg, data, trained, run_dir, seed) -> dict` of flat metrics and,
optionally, `validate(stage_cfg, data)` (a ConfigError before any training). Plug-ins add theirs under
entry-point group `gnnrisk.audits` ("module"), as the built-ins are registered in `AUDITS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_choice
from gnnrisk.plugins import Registry

BUILTIN_AUDITS: dict[str, str] = {"fairness": "gnnrisk.audit.fairness", "feedback": "gnnrisk.audit.feedback_stage"}
AUDITS = Registry("audit", BUILTIN_AUDITS)
TEMPORAL_MEMBERS = ("feedback",)  # the audits that run on data with periods


def audit_module(name: str) -> Any:
    """The module of audit `name`; one without `run(stage_cfg, data, trained, run_dir, seed)` is refused in one line."""
    module = AUDITS.load(name)
    if not callable(getattr(module, "run", None)):
        raise ConfigError("audit.name", name, f"{AUDITS[name]} of {AUDITS.source(name)} has no "
                          "run(stage_cfg, data, trained, run_dir, seed) function")
    return module


def run_stage(stage_cfg: DictConfig, data: Data, trained: Any, run_dir: Path, seed: int) -> dict[str, Any]:
    """Run the audit that `stage_cfg.name` names and return its flat metrics."""
    name = check_choice("audit.name", stage_cfg.name, AUDITS)
    return dict(audit_module(name).run(stage_cfg, data, trained, run_dir, seed))


def validate_stage(stage_cfg: DictConfig, data: Data, model_name: str | None = None) -> None:
    """Check the audit config against the dataset before any training (raises ConfigError).

    `model_name` (the stages' common signature) does not matter to the audits.
    """
    name = check_choice("audit.name", stage_cfg.name, AUDITS)
    module = audit_module(name)
    if hasattr(module, "validate"):
        module.validate(stage_cfg, data)


__all__ = ["AUDITS", "BUILTIN_AUDITS", "audit_module", "run_stage", "validate_stage"]
