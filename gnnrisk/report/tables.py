"""Result tables: all runs as CSV; the grouped summary as CSV, Markdown and LaTeX (booktabs)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from gnnrisk.report.aggregate import N_RUNS
from gnnrisk.report.collect import FAILED, INCOMPLETE
from gnnrisk.utils.files import write_text_atomic

MISSING = "–"
# Privacy budgets are shown rounded up: a table must never show less than what a mechanism spent.
ROUND_UP = ("epsilon", "delta")


def key_columns(summary: pd.DataFrame) -> list[str]:
    """The summary's group-key columns: everything before `n_runs`."""
    return list(summary.columns[: list(summary.columns).index(N_RUNS)])


def summary_metrics(summary: pd.DataFrame) -> list[str]:
    """The metrics the summary holds, in column order."""
    return [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]


def key_text(value: object) -> str:
    """A group key as text: missing values (e.g. epsilon of `none`) as a dash, 2.0 as 2."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mean_std_text(mean: float, std: float, digits: int, round_up: bool = False) -> str:
    """`mean ± std` with `digits` decimals (the mean rounded up if asked); no std when undefined (one run)."""
    if pd.isna(mean):
        return MISSING
    if round_up:
        mean = math.ceil(mean * 10**digits) / 10**digits
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The summary as text cells: keys, n, and one `mean ± std` column per metric."""
    out = pd.DataFrame({k: summary[k].map(key_text) for k in key_columns(summary)}, index=summary.index)
    out["n"] = summary[N_RUNS].astype(int).astype(str)
    for m in summary_metrics(summary):
        out[m] = [mean_std_text(a, b, digits, m in ROUND_UP)
                  for a, b in zip(summary[f"{m}_mean"], summary[f"{m}_std"])]
    return out


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table of text cells (pipes in cells escaped)."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |"
    lines = [row(list(table.columns)), "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += [row(list(r)) for r in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A LaTeX booktabs table (\\toprule, \\midrule, \\bottomrule) of text cells, special characters escaped."""
    n_keys = list(table.columns).index("n")
    fmt = "l" * n_keys + "r" * (table.shape[1] - n_keys)
    return table.to_latex(index=False, escape=True, column_format=fmt, caption=caption,
                          label="tab:gnnrisk-summary")


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that failed (with their error) or never finished (killed or still running)."""
    bad = runs[runs["status"].isin([FAILED, INCOMPLETE])]
    return bad[["run", "status", "error_type", "error"]].reset_index(drop=True)


def write_tables(runs: pd.DataFrame, summary: pd.DataFrame | None, out_dir: Path,
                 digits: int = 3) -> list[Path]:
    """Write runs.csv, failed.csv (if any), summary.csv/.md/.tex (if any group); return the paths."""
    written = [out_dir / "runs.csv"]
    write_text_atomic(written[-1], runs.to_csv(index=False))
    bad = failed_runs(runs)
    failed_path = out_dir / "failed.csv"
    if len(bad):
        write_text_atomic(failed_path, bad.to_csv(index=False))
        written.append(failed_path)
    else:
        failed_path.unlink(missing_ok=True)
    if summary is None or summary.empty:
        return written
    table = display_table(summary, digits)
    caption = "Mean ± unbiased std (ddof=1) over seeds; n = runs per row."
    for name, text in (("summary.csv", summary.to_csv(index=False)), ("summary.md", to_markdown(table)),
                       ("summary.tex", to_latex(table, caption))):
        written.append(write_text_atomic(out_dir / name, text))
    return written
