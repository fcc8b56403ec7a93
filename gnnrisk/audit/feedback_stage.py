"""The feedback audit as a pipeline stage (`audit=feedback`): on one snapshot, or over periods on data with periods.

The stage's entry points live here, above both simulations, so that neither imports the other's module
(`feedback_time` builds on `feedback`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.audit.feedback import run_snapshot, validate
from gnnrisk.audit.feedback_time import run_feedback_periods
from gnnrisk.privacy import TrainedModel


def run(cfg: DictConfig, data: Data, trained: TrainedModel, run_dir: Path, seed: int) -> dict[str, Any]:
    """Simulate the loop (the audit retrains its own models each round), save its table and plot, return its figures."""
    settings = validate(cfg, data)
    if getattr(data, "num_periods", None) is not None:
        return run_feedback_periods(cfg, settings, data, run_dir, seed)
    return run_snapshot(cfg, settings, data, run_dir, seed)


__all__ = ["run", "validate"]
