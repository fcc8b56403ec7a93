"""Read every run folder of a sweep (metrics.json, config.yaml, error.json) into one table."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

# the run folder's own readers live with its file names (light: `gnnrisk-run` needs them without pandas)
from gnnrisk.results import CONFIG_FILE, ERROR_FILE, METRICS_FILE, RUN_FILES, find_run_dirs, load_json_object  # noqa: F401

CONFIG_PREFIX = "cfg."     # config columns are `cfg.<dotted key>`; metric columns are the bare metric names
RUN_COLUMNS = ("run", "status", "error_type", "error")
# broken: metrics.json is there but not a readable JSON object (a truncated copy, a hand edit): not finished
FINISHED, FAILED, INCOMPLETE, BROKEN = "finished", "failed", "incomplete", "broken"


class ReportWarning(UserWarning):
    """Something in the sweep folder the user should know about; the report goes on."""


_format_warning = warnings.formatwarning


def format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """A ReportWarning as one line, `gnnrisk.report: warning: ...` (no source file and line: they are ours, not
    the user's); every other warning as Python formats it."""
    if issubclass(category, ReportWarning):
        return f"gnnrisk.report: warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


warnings.formatwarning = format_warning  # type: ignore[assignment]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config dicts become dotted keys; lists become their JSON text so that they can be grouped."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(tree, (list, tuple)):
        return {prefix[:-1]: json.dumps(tree)}
    return {prefix[:-1]: tree}


def run_status(run_dir: Path) -> str:
    """finished (metrics.json), failed (error.json) or incomplete (started, never ended: killed or running)."""
    if (run_dir / METRICS_FILE).exists():
        return FINISHED
    if (run_dir / ERROR_FILE).exists():
        return FAILED
    return INCOMPLETE


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} with a warning when it is unreadable."""
    obj, problem = load_json_object(path)
    if obj is None:
        warnings.warn(f"{path}: {problem}; ignored", ReportWarning, stacklevel=2)
        return {}
    return obj


def read_run(run_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """One row: the run's folder, status, error, flattened config (`cfg.` prefix) and its metrics."""
    status = run_status(run_dir)
    row: dict[str, Any] = {"run": run_dir.relative_to(sweep_dir).as_posix() or ".", "status": status,
                           "error_type": None, "error": None}
    if (run_dir / CONFIG_FILE).exists():
        try:
            config = yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            warnings.warn(f"{run_dir / CONFIG_FILE}: unreadable ({err}); run kept without its config",
                          ReportWarning, stacklevel=2)
            config = {}
        row.update({CONFIG_PREFIX + k: v for k, v in flatten(config).items()})
    if status == FAILED:
        err = _read_json(run_dir / ERROR_FILE)
        row["error_type"], row["error"] = err.get("type"), err.get("error")
    if status == FINISHED:
        metrics, problem = load_json_object(run_dir / METRICS_FILE)
        if metrics is None:
            warnings.warn(f"{run_dir / METRICS_FILE}: {problem}; the run counts as broken", ReportWarning,
                          stacklevel=2)
            row.update(status=BROKEN, error_type="BrokenMetrics", error=f"{METRICS_FILE} {problem}")
        else:
            row.update(metrics)
    return row


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric columns (everything that is neither run bookkeeping nor config), in first-seen order."""
    return [c for c in runs.columns if c not in RUN_COLUMNS and not c.startswith(CONFIG_PREFIX)]


def numeric_metrics(runs: pd.DataFrame) -> list[str]:
    """Metric columns that hold numbers (the ones that can be averaged and plotted)."""
    return [c for c in metric_columns(runs) if pd.api.types.is_numeric_dtype(runs[c])
            and not pd.api.types.is_bool_dtype(runs[c])]


def partially_reported(runs: pd.DataFrame) -> dict[str, int]:
    """Metric columns that some finished runs report and others do not: {name: how many runs lack it}."""
    done = runs[runs["status"] == FINISHED]
    missing = {c: int(done[c].isna().sum()) for c in metric_columns(runs)}
    # a field null in every run is null by design (e.g. epsilon when no run is private): not a difference
    return {c: n for c, n in missing.items() if 0 < n < len(done)}


def component_explained(runs: pd.DataFrame, fields: list[str]) -> list[str]:
    """The `fields` whose presence follows from the runs' components: among finished runs with the same
    `<group>.name` values (mechanism, attack, dataset, ...), either all report the field or none does.

    A private run reports its epsilon, delta and its mechanism's own diagnostics, a non-private one does not
    (nor does a mechanism run at epsilon inf, without noise): that is a difference by design, not a sign of
    runs from different code or settings."""
    done = runs[runs["status"] == FINISHED]
    keys = done[[c for c in done.columns if c.startswith(CONFIG_PREFIX) and c.endswith(".name")]].astype(str)
    epsilon = f"{CONFIG_PREFIX}privacy.epsilon"
    if epsilon in done:  # a mechanism at epsilon inf adds no noise and reports no budget: a non-private run
        keys = keys.assign(noise=np.isfinite(pd.to_numeric(done[epsilon], errors="coerce").fillna(np.inf)))
    keys = keys.loc[:, keys.astype(str).nunique() > 1]
    if keys.empty or done.empty:
        return []
    groups = keys.astype(str).agg("\x1f".join, axis=1)
    return [f for f in fields if (done[f].notna().groupby(groups).nunique() <= 1).all()]


def collect_runs(sweep_dir: str | Path) -> pd.DataFrame:
    """All runs under `sweep_dir` as a DataFrame, one row per run folder, sorted by folder name."""
    sweep_dir = Path(sweep_dir)
    rows = [read_run(d, sweep_dir) for d in find_run_dirs(sweep_dir)]
    if not rows:
        return pd.DataFrame(columns=list(RUN_COLUMNS))
    runs = pd.DataFrame.from_records(rows)
    # JSON null in a numeric column arrives as None: make those columns numeric (NaN) again
    for col in runs.columns:
        if runs[col].dtype == object and col not in RUN_COLUMNS:
            converted = pd.to_numeric(runs[col], errors="coerce")
            if (converted.notna() == runs[col].notna()).all():
                runs[col] = converted
    return runs
