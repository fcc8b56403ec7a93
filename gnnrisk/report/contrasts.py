"""Paired contrasts between two groups of a sweep, seed by seed (for the studies' contrast scripts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gnnrisk.report.aggregate import t_interval
from gnnrisk.report.tables import difference_text


def runs_by_seed(runs: pd.DataFrame, mechanism: str, model: str, epsilon: float | None) -> pd.DataFrame:
    """Runs of one mechanism and model (at one target epsilon, unless None), one per seed, indexed by seed."""
    rows = runs[(runs["cfg.privacy.name"] == mechanism) & (runs["cfg.model.name"] == model)]
    if epsilon is not None:
        rows = rows[np.isclose(pd.to_numeric(rows["cfg.privacy.epsilon"], errors="coerce"), epsilon)]
    return rows.drop_duplicates("cfg.seed").set_index("cfg.seed")


def paired_cell(diff: pd.Series, digits: int = 3) -> str:
    """`mean [lo, hi]*` of per-seed differences (pairs present on both sides only), 95% t-interval."""
    diff = diff.dropna()
    if diff.empty:
        return "–"
    lo, hi = t_interval(diff.mean(), diff.std(ddof=1), len(diff))
    return difference_text(float(diff.mean()), float(lo), float(hi), digits)


def mean_cell(values: pd.Series, digits: int = 3) -> str:
    """`mean [lo, hi] (n)` over seeds, 95% t-interval (non-numeric and missing values left out)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "–"
    if len(v) == 1:
        return f"{v.iloc[0]:.{digits}f} (n=1)"
    lo, hi = t_interval(v.mean(), v.std(ddof=1), len(v))
    return f"{v.mean():.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] (n={len(v)})"


def markdown_table(table: pd.DataFrame, first: str) -> str:
    """A DataFrame as a Markdown table, its index as the first column named `first`."""
    lines = [f"| {first} | " + " | ".join(map(str, table.columns)) + " |", "|---|" + "---|" * len(table.columns)]
    lines += [f"| {label} | " + " | ".join(map(str, row)) + " |" for label, row in table.iterrows()]
    return "\n".join(lines)


def write_into(page: Path, tables: dict[str, str], prefix: str) -> None:
    """Replace each `<!-- PREFIX:KEY:begin -->` ... `<!-- PREFIX:KEY:end -->` region of `page` with table KEY."""
    text = page.read_text()
    for key, table in tables.items():
        begin, end = f"<!-- {prefix}:{key}:begin -->", f"<!-- {prefix}:{key}:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"
    page.write_text(text)
