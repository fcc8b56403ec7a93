"""Tiny runs and sweeps for the tracking tests, and what their run folders say (the truth to compare with)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 3
TINY = ["data.num_nodes=200", "data.num_communities=10", f"train.epochs={EPOCHS}", "train.patience=100",
        "device=cpu", "model.hidden_channels=8", "audit=fairness"]  # audit=fairness draws reliability.png


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`gnnrisk-run ARGS` as a user runs it, one thread."""
    return subprocess.run([sys.executable, "-m", "gnnrisk", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"})


def run_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's run folders (those holding metrics.json), outside its tracking store."""
    return sorted(p.parent for p in sweep_dir.glob("*/metrics.json"))


def numeric_metrics(run_dir: Path) -> dict[str, float]:
    """metrics.json's numbers (what a tracker logs as final metrics)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def history_columns(run_dir: Path) -> dict[str, list[float]]:
    """history.csv at the run folder's top level, column by column."""
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(r[key]) for r in rows] for key in rows[0]}
