"""What a plot says on its face about its intervals: clipped ends marked with triangles, and a note when the
intervals are clipped to the metric's range or some groups have fewer than three seeds."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gnnrisk.report.ranges import clip_interval, few_seeds_note, metric_range

CLIPPED_TEXT = "▲▼ interval clipped to the metric's range [{lo:g}, {hi:g}]"


def clipped_ends(summary: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows whose interval of `name` was clipped at the bottom and at the top of its range."""
    if f"{name}_ci_lo" not in summary:
        return np.zeros(len(summary), bool), np.zeros(len(summary), bool)
    _, _, low, high = clip_interval(name, summary[f"{name}_ci_lo"], summary[f"{name}_ci_hi"])
    return low, high


def mark_clipped(ax: plt.Axes, summary: pd.DataFrame, name: str, rows: np.ndarray, x: np.ndarray, color: str,
                 horizontal: bool = False) -> bool:
    """Triangles at the clipped ends of `rows`' intervals of `name` (pointing out of the range), at positions `x`
    (the other axis); `horizontal`: the interval runs along the x axis. Whether any end was clipped."""
    low, high = clipped_ends(summary, name)
    bounds = metric_range(name)
    if bounds is None or not (low[rows].any() or high[rows].any()):
        return False
    x = np.asarray(x, float)
    for mask, bound, marker in ((low[rows], bounds[0], "<" if horizontal else "v"),
                                (high[rows], bounds[1], ">" if horizontal else "^")):
        if mask.any():
            at = np.full(int(mask.sum()), bound)
            xs, ys = (at, x[mask]) if horizontal else (x[mask], at)
            ax.plot(xs, ys, linestyle="none", marker=marker, color=color, markersize=7, markeredgecolor="k",
                    markeredgewidth=0.5, zorder=4, clip_on=False)
    return True


def note_text(summary: pd.DataFrame, name: str, rows: np.ndarray, clipped: bool) -> str | None:
    """What `rows`' intervals of `name` cannot say: fewer than three seeds in some groups, and that intervals
    were clipped to the metric's range (`clipped`); None when there is nothing to say."""
    counts = summary[f"{name}_count"].to_numpy(float)[rows] if f"{name}_count" in summary else np.array([])
    lines = [few_seeds_note(counts)]
    bounds = metric_range(name)
    if clipped and bounds is not None:
        lines.append(CLIPPED_TEXT.format(lo=bounds[0], hi=bounds[1]))
    return "\n".join(line for line in lines if line) or None


def make_room(ax: plt.Axes, lines: int) -> None:
    """Lower the y axis so that a note of `lines` lines at the bottom of the axes covers no data."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom - (top - bottom) * (0.04 + 0.07 * lines), top)


def face_note(ax: plt.Axes, summary: pd.DataFrame, name: str, rows: np.ndarray, clipped: bool,
              pad: bool = True) -> str | None:
    """Write `note_text` at the bottom left of the axes; the text written, or None.

    `pad`: lower the y axis first (`make_room`; call this after everything is drawn, once per shared y axis)."""
    text = note_text(summary, name, rows, clipped)
    if text is None:
        return None
    if pad:
        make_room(ax, text.count("\n") + 1)
    ax.text(0.01, 0.02, text, transform=ax.transAxes, fontsize=7, ha="left", va="bottom", color="0.2", zorder=6,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "0.75", "alpha": 0.9})
    return text
