"""What a tracked run holds, read from the finished run folder's top level and nothing below it.

The privacy rule of the run folder carries over by construction: a private run writes what its epsilon
does not cover (a node-level run's training curve, its diagnostics) into diagnostics/, which is never
read here, so a tracking store holds exactly what the run folder's top level may show.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gnnrisk.results import CONFIG_FILE, DIAGNOSTICS_DIR, HISTORY_FILE, METRICS_FILE

ARTIFACT_SUFFIXES = (".png", ".pdf")
STEP_COLUMN = "epoch"
CURVE_COLUMNS = ("origin",)  # columns that tell curves apart (one per forecast origin), not metrics
# The run's guarantee, as metrics.json reports it: tagged on every tracked run (`guarantee.<key>`).
PRIVACY_KEYS = ("mechanism", "privacy_unit", "epsilon", "delta", "epsilon_covers")
GUARANTEE = "guarantee."


@dataclass
class RunRecord:
    """One finished run as a tracker sees it: params, tags, final metrics, the curve, the plots."""

    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]
    curve: list[tuple[str, int, float]] = field(default_factory=list)  # (metric, epoch, value)
    artifacts: list[Path] = field(default_factory=list)
    started: float = 0.0  # config.yaml's time (the run's start), seconds since the epoch
    ended: float = 0.0    # metrics.json's time (its end)

    def curve_keys(self) -> list[str]:
        """The metrics of the curve, in first-seen order."""
        return list(dict.fromkeys(key for key, _, _ in self.curve))


def text_of(value: Any) -> str:
    """A config or metrics value as text: null, true/false, JSON for lists, else str()."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def is_number(value: Any) -> bool:
    """A metric value: an int or a float (booleans are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_params(run_dir: Path) -> dict[str, str]:
    """config.yaml (the resolved config) flattened to dotted keys, values as text."""
    from gnnrisk.report.collect import flatten

    config = yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}
    return {key: text_of(value) for key, value in flatten(config).items()}


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json as written (a finished run has one)."""
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    if not isinstance(metrics, dict):
        raise ValueError(f"{run_dir / METRICS_FILE} is not a JSON object")
    return metrics


def read_curve(path: Path) -> list[tuple[str, int, float]]:
    """history.csv as (metric, epoch, value) points; a forecast's curves as `origin_<t>/<metric>`."""
    if not path.is_file():
        return []
    points: list[tuple[str, int, float]] = []
    with open(path, newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            step = int(float(row[STEP_COLUMN])) if row.get(STEP_COLUMN) not in (None, "") else i + 1
            prefix = "".join(f"{c}_{int(float(row[c]))}/" for c in CURVE_COLUMNS if row.get(c) not in (None, ""))
            for key, text in row.items():
                if key in (STEP_COLUMN, *CURVE_COLUMNS) or key is None or text in (None, ""):
                    continue
                try:
                    points.append((prefix + key, step, float(text)))
                except ValueError:
                    continue  # a text column: not a metric
    return points


def curve_status(metrics: dict[str, Any], curve: list[tuple[str, int, float]]) -> str:
    """Where the run's training curve is, said on the tracked run (a private run's may be withheld)."""
    if curve:
        return "tracked (history.csv)"
    if metrics.get("diagnostics_outside_epsilon"):
        return f"not tracked: in {DIAGNOSTICS_DIR}/ of the run folder, not covered by epsilon"
    if metrics.get("history_file") is None and metrics.get("privacy_unit") == "node" \
            and metrics.get("epsilon") is not None:
        return "not tracked: not covered by epsilon, not written (privacy.diagnostics=false)"
    return "none"


def read_run_folder(run_dir: Path) -> RunRecord:
    """The record of the finished run in `run_dir`: top-level files only, diagnostics/ never read."""
    metrics = read_metrics(run_dir)
    curve = read_curve(run_dir / HISTORY_FILE)
    tags = {GUARANTEE + key: text_of(metrics.get(key)) for key in PRIVACY_KEYS}
    tags[GUARANTEE + "training_curve"] = curve_status(metrics, curve)
    tags["gnnrisk.run_dir"] = str(run_dir.resolve())
    numeric = {key: float(value) for key, value in metrics.items() if is_number(value)}
    artifacts = sorted(p for p in run_dir.iterdir() if p.is_file() and p.suffix.lower() in ARTIFACT_SUFFIXES)
    started = (run_dir / CONFIG_FILE).stat().st_mtime
    return RunRecord(read_params(run_dir), tags, numeric, curve, artifacts, started,
                     (run_dir / METRICS_FILE).stat().st_mtime)
