"""The range a metric can take (AUROC, accuracy, AUPRC, rates: [0, 1]) and Student-t intervals clipped to it.

summary.csv keeps the t-interval as computed (`<m>_ci_lo`, `<m>_ci_hi`): an interval that leaves the metric's
range says that the group has too few seeds, or too much spread, to place its mean. The text tables and the
plots show it clipped to the range and marked (`CLIP_MARK` in a cell, triangles at a plot's clipped ends).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNIT = (0.0, 1.0)
# Name parts of metrics that are shares or scores in [0, 1] (`test_auroc_true`, `tpr_minority`,
# `attack_mia_tpr_at_01fpr`, `selection_rate_majority`, `h2_test_acc`).
UNIT_PARTS = frozenset({"acc", "auroc", "auprc", "f1", "tpr", "fpr", "ece", "rate", "accuracy", "precision",
                        "recall", "share", "fraction"})
# Parts that make a name something else: a difference, a gain, a bound on epsilon, a noisy count, a time.
NOT_UNIT_PARTS = frozenset({"diff", "rise", "gain", "gap", "delta", "eps", "epsilon", "lower", "noisy", "noise",
                            "seconds", "advantage", "sensitivity", "count", "correct"})
CLIP_MARK = "†"
CLIPPED_NOTE = (f"{CLIP_MARK} the 95% t-interval reaches beyond the metric's range and is shown clipped to it: "
                f"too few seeds (or too much spread) to place the mean.")
MIN_SEEDS = 3


def metric_range(name: str) -> tuple[float, float] | None:
    """The values `name` can take, (0, 1) for shares and scores, None when the name does not say."""
    parts = set(name.split("_"))
    if parts & NOT_UNIT_PARTS or not parts & UNIT_PARTS:
        return None
    return UNIT


def clip_interval(name: str, lo: object, hi: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(lo, hi)` clipped to `name`'s range, and masks of the bounds that were clipped (NaN bounds stay NaN)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    bounds = metric_range(name)
    if bounds is None:
        return lo, hi, np.zeros(lo.shape, bool), np.zeros(hi.shape, bool)
    low_cut, high_cut = lo < bounds[0], hi > bounds[1]  # False for NaN
    return np.where(low_cut, bounds[0], lo), np.where(high_cut, bounds[1], hi), low_cut, high_cut


def clipped_rows(summary: pd.DataFrame, name: str) -> np.ndarray:
    """Mask of the summary rows whose interval of `name` leaves the metric's range."""
    if f"{name}_ci_lo" not in summary:
        return np.zeros(len(summary), bool)
    _, _, low, high = clip_interval(name, summary[f"{name}_ci_lo"], summary[f"{name}_ci_hi"])
    return low | high


def few_seeds_note(counts: object) -> str | None:
    """A note for a plot's face when some of its groups have fewer than MIN_SEEDS seeds, else None."""
    n = np.asarray(counts, float)
    n = n[np.isfinite(n) & (n > 0)]
    few = int((n < MIN_SEEDS).sum())
    if not few:
        return None
    what = "no interval for n = 1" if n.min() < 2 else "the intervals are too wide to resolve differences"
    return f"n < {MIN_SEEDS} seeds in {few} of {len(n)} groups (min n = {int(n.min())}): {what}"
