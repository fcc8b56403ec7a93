"""The whole report of one sweep folder: collect, aggregate, write tables and plots, say what could not be done."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gnnrisk.errors import ConfigError, DataError
from gnnrisk.report.aggregate import BUDGETS, aggregate
from gnnrisk.report.collect import (FINISHED, ReportWarning, collect_runs, component_explained, numeric_metrics,
                                    partially_reported)
from gnnrisk.report.files import MANIFEST, prepare_out, previous_files, remove_stale, strays, write_manifest
from gnnrisk.report.labels import label, true_counterpart
from gnnrisk.report.plots import column_of, plot_keys, plot_metric_by_keys, plot_metric_vs_x, plot_pareto
from gnnrisk.report.tables import key_columns, markdown_tables, summary_metrics, write_tables
from gnnrisk.report.writeup import read_into, write_prepared
from gnnrisk.tuning import selection_notes

# Default metrics where neither flags nor the study's settings name any (see `default_metrics`).
RISK_METRICS = ("test_auroc_true", "test_auroc", "test_auprc")
CLASS_METRICS = ("test_acc", "test_auroc")
# The city's forecasts (hotspots or people): the field's hit rate at 5% of units and AUROC, against the truth
CITY_METRICS = ("hit_rate_true_at_5", "auroc_true", "auprc_true")
EPSILON = "epsilon"
# Settings whose unusable values are bad input when `strict` names them (ConfigError, nothing written).
CHECKED = ("metrics", "x", "pareto_x", "pareto_y", "into")


@dataclass
class Report:
    """What a report produced: the run table, the grouped summary, the files, and the problems met."""

    runs: pd.DataFrame
    summary: pd.DataFrame | None
    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # requested things that could not be produced
    notes: list[str] = field(default_factory=list)      # warnings about the data; the report is complete
    info: list[str] = field(default_factory=list)       # what was chosen and why (defaults, remembered settings)


def _has_values(summary: pd.DataFrame, name: str) -> bool:
    """Whether `name` is a summary metric or numeric group key with at least one finite value."""
    if f"{name}_mean" in summary:
        return bool(summary[f"{name}_mean"].notna().any())
    if name in key_columns(summary):
        return bool(pd.to_numeric(summary[name], errors="coerce").notna().any())
    return False


def _warn_differing_metrics(runs: pd.DataFrame, shown: list[str]) -> None:
    """Warn about shown metrics that some runs lack, and count the other fields that only some runs report
    (not those whose presence follows from the runs' components: a private run's epsilon and diagnostics)."""
    partial = partially_reported(runs)
    n_done = int((runs["status"] == FINISHED).sum())
    for metric in [m for m in shown if m in partial and m not in BUDGETS]:
        warnings.warn(f"metric {metric} is missing in {partial[metric]} of {n_done} finished runs: each group's "
                      f"mean, std and count use the runs that report it", ReportWarning, stacklevel=2)
    others = [m for m in partial if m not in shown]
    others = [m for m in others if m not in set(component_explained(runs, others))]
    if others:
        warnings.warn(f"runs report different metric sets: {len(others)} fields only in some runs of the same "
                      f"mechanism and stages (e.g. {', '.join(others[:5])}); runs.csv holds the union, blank where "
                      f"a run lacks a field", ReportWarning, stacklevel=2)


def risk_labels(available: list[str]) -> str | None:
    """Why the runs score a binary risk label whose positives are a minority, or None when nothing says so.

    metrics.json holds no class counts; what tells: scores against a ground truth (`<m>_true`: a synthetic
    population's rare outcome) or per-group rates (`tpr_<group>`: a binary label with groups)."""
    if any(m.endswith("_true") and m.split("_")[0] in ("train", "val", "test") for m in available):
        return "the runs score a rare binary outcome against its ground truth (`_true` metrics)"
    if any(m.startswith(("tpr_", "selection_rate_")) for m in available):
        return "the runs score a binary label with per-group rates (`tpr_<group>`)"
    return None


def default_metrics(available: list[str]) -> tuple[list[str], str]:
    """The metrics shown when none are named, and a line that says which and why.

    City forecasts (`hit_rate_true_at_5` reported): CITY_METRICS. Binary risk labels (`risk_labels`): AUROC against the truth, AUROC, AUPRC; accuracy says little when most
    labels are negative (predicting "no risk" everywhere scores the negatives' share). Otherwise (balanced or
    multi-class labels, e.g. Planetoid, the cSBM): accuracy and AUROC."""
    if "hit_rate_true_at_5" in available:
        chosen = [m for m in CITY_METRICS if m in available]
        return chosen, (f"metrics not given: {', '.join(chosen)} (city forecasts: the share of next period's "
                        "incidents in the top 5% of units, and ranking against the truth; --metrics picks others)")
    reason = risk_labels(available)
    wanted = RISK_METRICS if reason else CLASS_METRICS
    chosen = [m for m in wanted if m in available]
    if not chosen:
        chosen = [m for m in available if m not in (EPSILON, "seed")][:1]
        return chosen, f"metrics: none of {', '.join(wanted)} reported; showing {', '.join(chosen) or 'none'}"
    why = (f"{reason}: accuracy would mostly count the negatives" if reason
           else "no sign of imbalanced binary labels")
    return chosen, f"metrics not given: {', '.join(chosen)} ({why}; --metrics picks others)"


def choose_metrics(requested: list[str] | None, available: list[str], problems: list[str],
                   info: list[str] | None = None, strict: bool = False) -> list[str]:
    """The requested metrics that exist (a problem for each one that does not, a ConfigError when `strict`);
    by default `default_metrics`, its reason appended to `info`."""
    if requested is None:
        chosen, line = default_metrics(available)
        if info is not None:
            info.append(line)
        return chosen
    unknown = [m for m in requested if m not in available]
    if unknown and strict:
        raise ConfigError("metrics", ",".join(unknown), "no finished run reports it; available: "
                          + ", ".join(available))
    if unknown:
        problems.append(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return [m for m in requested if m in available]


def _check_axes(report: Report, x: str | None, pareto_x: str | None, pareto_y: str | None) -> None:
    """A ConfigError for an axis the runs have no values for (a text group key is a valid `x` too)."""
    for name, value in (("x", x), ("pareto_x", pareto_x), ("pareto_y", pareto_y)):
        if value is None or _has_values(report.summary, value) or (name == "x" and _is_text_key(report.summary,
                                                                                                 value)):
            continue
        raise ConfigError(name, value, f"no run has a value for it; {_choices(report)}")


def _prepared_into(report: Report, into: Path, digits: int, strict: bool) -> str | None:
    """The write-up's new text, or None with a problem (a ConfigError when `strict`) when it cannot be made."""
    try:
        return read_into(into, markdown_tables(report.summary, digits))
    except DataError as err:
        if strict:
            raise ConfigError("into", str(into), str(err)) from None
        report.problems.append(f"--into {into}: {err}")
        return None


def make_report(sweep_dir: str | Path, out_dir: str | Path | None = None, metrics: list[str] | None = None,
                x: str | None = None, pareto_x: str | None = None, pareto_y: str | None = None,
                pareto_sense: tuple[str | None, str | None] = (None, None), into: str | Path | None = None,
                html: bool = False, digits: int = 3, strict: Iterable[str] = (), info: Iterable[str] = ()) -> Report:
    """Report on every run under `sweep_dir` into `out_dir` (default SWEEP_DIR/report).

    `None` for `metrics`, `x`, `pareto_x`, `pareto_y` means "the default, where the data allows it";
    a name given explicitly that the runs do not have is a problem (the rest is still produced), or, for the
    settings named in `strict` (of `CHECKED`), a ConfigError raised before anything is written.
    `into`: a Markdown write-up whose marked regions get summary.md and paired.md.
    `html`: also write index.html, every table and plot on one self-contained page.
    `digits`: the decimals of every written table (Markdown, LaTeX, HTML) and so of `into`'s regions.
    `info`: lines that start the report's `info` (what the caller chose, e.g. remembered settings).
    The output folder is checked before anything is written (a ConfigError `out=...` if unusable); files that
    the previous report listed in its manifest.json and this one does not write again are removed.
    """
    strict = set(strict)
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"sweep folder {sweep_dir} does not exist")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReportWarning)
        runs = collect_runs(sweep_dir)
        if runs.empty:
            raise DataError(f"no runs under {sweep_dir}: a run folder holds metrics.json, error.json or "
                            f"config.yaml (is this the hydra.sweep.dir of a sweep?)")
        report = Report(runs=runs, summary=None, info=list(info))
        finished = runs[runs["status"] == FINISHED]
        available = numeric_metrics(finished) if len(finished) else []
        chosen = choose_metrics(metrics, available, report.problems, report.info,
                                strict="metrics" in strict and len(finished) > 0)
        axes = [a for a in (x, pareto_x, pareto_y) if a is not None and a in available]
        extra = [b for b in BUDGETS if b in available and finished[b].notna().any()]  # the spent budget
        summary_metrics = list(dict.fromkeys(extra + chosen + axes))
        _warn_differing_metrics(runs, summary_metrics)
        if len(finished):
            report.summary = aggregate(runs, summary_metrics)
            _check_axes(report, *(a if n in strict else None for n, a in
                                  (("x", x), ("pareto_x", pareto_x), ("pareto_y", pareto_y))))
        else:
            report.problems.append("no run finished: no summary, no plots (see failed.csv)")
        new_into = _prepared_into(report, Path(into), digits, "into" in strict) if into is not None else None
        prepare_out(out_dir)  # the first write: nothing before it, and a ConfigError if the folder is unusable
        previous = previous_files(out_dir)
        report.written += write_tables(runs, report.summary, out_dir, digits)
        if report.summary is not None:
            report.written += _plots(report, chosen, x, pareto_x, pareto_y, pareto_sense, out_dir)
    report.notes += [str(w.message) for w in caught if issubclass(w.category, ReportWarning)]
    report.notes += selection_notes(sweep_dir)  # a tuning study over private trials: its selection's cost
    if previous is None:
        _note_strays(report, out_dir, html)
    if html:
        from gnnrisk.report.html import write_html  # only when asked: the page needs no plotting imports
        report.written.append(write_html(report, out_dir, sweep_dir, digits))
    _finish_folder(report, out_dir, previous, {"metrics": chosen, "x": x, "pareto_x": pareto_x,
                                               "pareto_y": pareto_y, "pareto_sense": list(pareto_sense),
                                               "html": html, "digits": digits})
    if new_into is not None:
        report.written.append(write_prepared(Path(into), new_into))
    return report


def _note_strays(report: Report, out_dir: Path, html: bool) -> None:
    """A note on files named like a report's that this one does not write, in a folder without a manifest."""
    left = strays(out_dir, report.written + ([out_dir / "index.html"] if html else []))
    if left:
        report.notes.append(f"{len(left)} file(s) in {out_dir} look like an earlier report's (written before "
                            f"reports kept a {MANIFEST}) and are not part of this one: {', '.join(left[:6])}"
                            f"{' ...' if len(left) > 6 else ''}; remove them by hand")


def _finish_folder(report: Report, out_dir: Path, previous: list[str] | None, settings: dict) -> None:
    """Remove the previous report's files that this one did not write again, and list this one's in the manifest."""
    removed = remove_stale(out_dir, previous, report.written)
    if removed:
        report.info.append(f"removed {len(removed)} file(s) of the previous report in {out_dir} that this one "
                           f"does not write: {', '.join(removed[:6])}{' ...' if len(removed) > 6 else ''}")
    report.written.append(write_manifest(out_dir, report.written, settings))


def _varies(summary: pd.DataFrame, name: str) -> bool:
    """Whether `name` (a metric's group means, or a numeric key) takes two or more distinct values (2 digits)."""
    values = column_of(summary, name)
    if values is None:
        return False
    finite = values[np.isfinite(values.to_numpy(float))]
    return len({float(f"{v:.2g}") for v in finite}) >= 2


def _is_text_key(summary: pd.DataFrame, name: str) -> bool:
    """Whether `name` is a group key without numeric values (a model, a dataset, a topology): a category axis."""
    return name in key_columns(summary) and not pd.to_numeric(summary[name], errors="coerce").notna().any()


def _plot_summary(report: Report, counterparts: list[str]) -> pd.DataFrame:
    """The summary with the `_true` counterparts of the plotted metrics added (plots only: tables stay as asked)."""
    missing = [c for c in counterparts if f"{c}_mean" not in report.summary]
    if not missing:
        return report.summary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)  # the same groups: their warnings are already noted
        return aggregate(report.runs, summary_metrics(report.summary) + missing)


def _point_plots(summary: pd.DataFrame, chosen: list[str], x_key: str | None, counterparts: dict[str, str | None],
                 out_dir: Path) -> list[Path]:
    """One point plot per metric: x = `x_key` (default: the first varied key), series = the other keys."""
    written = []
    for metric in chosen:
        if summary[f"{metric}_mean"].notna().any():
            written += plot_metric_by_keys(summary, metric, out_dir, x_key, counterparts.get(metric))
    return written


def _plots(report: Report, chosen: list[str], x: str | None, pareto_x: str | None, pareto_y: str | None,
           sense: tuple[str | None, str | None], out_dir: Path) -> list[Path]:
    """The metric-vs-x plots (point plots by the varied keys where there is no epsilon axis) and the Pareto plot
    that the data allows; problems for the ones it does not."""
    summary, written = report.summary, []
    finished = report.runs[report.runs["status"] == FINISHED]
    available = numeric_metrics(finished) if len(finished) else []
    counterparts = {m: true_counterpart(m, available) for m in chosen}
    plotted = _plot_summary(report, [c for c in counterparts.values() if c is not None])
    x_axis = x or EPSILON
    if x is not None and _is_text_key(summary, x):
        written += _point_plots(plotted, chosen, x, counterparts, out_dir)
    elif _has_values(summary, x_axis):
        for metric in chosen:
            written += plot_metric_vs_x(plotted, metric, x_axis, out_dir, counterparts.get(metric))
        if x is None and not _varies(summary, EPSILON):  # one spent epsilon: no axis to read a trend along
            written += _point_plots(plotted, chosen, None, counterparts, out_dir)
    elif x is not None:
        report.problems.append(f"x axis {x!r}: no run has a value for it; no metric-vs-{x} plots; "
                               f"{_choices(report)}")
    else:
        keys = plot_keys(summary)
        by = f"point plots by {label(keys[0])}" if keys else "one point plot per metric (one group)"
        report.notes.append(f"no run reports an epsilon (no private mechanism in this sweep): "
                            f"no metric-vs-epsilon plots; {by} instead")
        written += _point_plots(plotted, chosen, None, counterparts, out_dir)
    px, py = pareto_x or EPSILON, pareto_y or (chosen[0] if chosen else None)
    missing = [a for a in (px, py) if a is None or not _has_values(summary, a)]
    if not missing:
        written += plot_pareto(summary, px, py, out_dir, *sense)
    elif pareto_x is not None or pareto_y is not None:
        report.problems.append(f"Pareto plot {px} vs {py}: no values for {', '.join(map(str, missing))}; "
                               f"{_choices(report)}")
    return written


def _choices(report: Report) -> str:
    """What an axis may be: the metrics with values, and the numeric group keys."""
    summary = report.summary
    names = [m for m in summary_metrics(summary) if summary[f"{m}_mean"].notna().any()]
    keys = [k for k in key_columns(summary) if pd.to_numeric(summary[k], errors="coerce").notna().any()]
    runs = report.runs[report.runs["status"] == FINISHED]
    others = [m for m in numeric_metrics(runs) if runs[m].notna().any() and m not in names]
    return f"available: {', '.join(names + keys + others)}"
