"""Paired contrasts between two groups of a sweep, seed by seed (for the studies' contrast scripts)."""

from __future__ import annotations

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
