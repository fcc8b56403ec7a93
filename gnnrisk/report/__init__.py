"""Aggregation of many runs into tables and plots (`gnnrisk-report SWEEP_DIR`).

collect (run folders -> one DataFrame), aggregate (groups over seeds), tables (CSV, Markdown, LaTeX),
plots (metric vs epsilon, Pareto front), build (the whole report), cli, callback (report at sweep end).

From Python (docs/api.md):

    runs = gnnrisk.report.load(SWEEP_DIR)                 # one row per run folder (runs.csv)
    summary = gnnrisk.report.summarize(runs, ["test_auroc"])   # one row per group over seeds (summary.csv)
    gnnrisk.report.display_table(summary)                 # its text cells (summary.md); paired_table: paired.md
    gnnrisk.report.to_markdown(table)                     # a text table as Markdown, its footnotes (†) under it
    gnnrisk.report.plot_metric_vs_x(summary, "test_auroc", "epsilon", OUT_DIR)   # PNG + PDF paths

Nothing is imported here until used, so that `gnnrisk.progress` stays light inside sweep jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import pandas as pd

# Public functions of the report modules, importable from here (on first use). Those that take the run
# table (`load`): summarize, write_tables, failed_runs; those that take the summary (`summarize`):
# display_table, paired_table, plot_metric_vs_x, plot_metric_by_keys, plot_pareto; to_markdown/to_latex take a
# text table.
# (`aggregate` is not among them: it is also the name of a module of this package, which shadows it.)
_EXPORTS = {
    "collect_runs": "collect", "display_table": "tables", "paired_table": "tables",
    "to_markdown": "tables", "to_latex": "tables", "footnotes": "tables", "write_tables": "tables", "failed_runs": "tables",
    "plot_metric_vs_x": "plots", "plot_metric_by_keys": "plots", "plot_pareto": "plots", "make_report": "build", "Report": "build",
}
__all__ = ["load", "summarize", *_EXPORTS]


def load(sweep_dir: str | Path) -> pd.DataFrame:
    """Every run under `sweep_dir` as one DataFrame, as `gnnrisk-report` reads it (its runs.csv).

    One row per run folder (any depth; Hydra's `.hydra/` copies ignored), sorted by folder: `run` (the
    folder, relative), `status` (finished / failed / incomplete / broken), `error_type`, `error`, every
    config value as `cfg.<dotted.key>`, every metrics.json field. A missing folder or one without runs
    raises the DataError that `gnnrisk-report` prints.
    """
    from gnnrisk.errors import DataError
    from gnnrisk.report.collect import collect_runs

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"sweep folder {sweep_dir} does not exist")
    runs = collect_runs(sweep_dir)
    if runs.empty:
        raise DataError(f"no runs under {sweep_dir}: a run folder holds metrics.json, error.json or "
                        f"config.yaml (is this the hydra.sweep.dir of a sweep?)")
    return runs


def summarize(runs: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """The groups of a run table (`load`) over seeds, as `gnnrisk-report` computes its summary.csv.

    `metrics`: the metrics to summarise (default: gnnrisk-report's, `gnnrisk.report.build.default_metrics`:
    AUROC and AUPRC for binary risk labels, accuracy and AUROC otherwise); the spent budgets (epsilon, delta) are added when some run is private. Each metric
    gets `<m>_mean`, `_std` (ddof=1), `_count`, `_ci_lo`, `_ci_hi`, and private groups the paired
    differences to the non-private run (`<m>_diff_*`, `<m>_rise_*`). Only finished runs count.
    """
    from gnnrisk.errors import ConfigError, DataError
    from gnnrisk.report.aggregate import BUDGETS, aggregate
    from gnnrisk.report.build import choose_metrics
    from gnnrisk.report.collect import FINISHED, numeric_metrics

    finished = runs[runs["status"] == FINISHED]
    if finished.empty:
        raise DataError("no run finished: no summary (see the status and error columns)")
    available = numeric_metrics(finished)
    if metrics is not None:
        if isinstance(metrics, str):
            metrics = [metrics]
        unknown = [m for m in metrics if m not in available]
        if unknown:
            raise ConfigError("metrics", unknown, "no finished run reports them; available: " + ", ".join(available))
    chosen = choose_metrics(None if metrics is None else list(metrics), available, [])
    budgets = [b for b in BUDGETS if b in available and finished[b].notna().any()]
    return aggregate(runs, list(dict.fromkeys(budgets + chosen)))


def __getattr__(name: str) -> Any:
    """The report modules' public functions (`_EXPORTS`), imported when first used."""
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"gnnrisk.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'gnnrisk.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
