"""Trade-off plots: a metric against epsilon per mechanism, and any metric against any other with its Pareto front."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from matplotlib.ticker import NullFormatter  # noqa: E402

from gnnrisk.report.aggregate import INFO_COLUMNS  # noqa: E402
from gnnrisk.report.tables import LEVEL, key_columns, key_text  # noqa: E402

FORMATS = ("png", "pdf")
# Name parts of metrics where smaller is better (a budget spent, a disparity, a cost, an attack's success).
LOWER_IS_BETTER = frozenset({"epsilon", "delta", "ece", "loss", "seconds", "attack", "leak", "advantage"})


def sense_of(metric: str) -> str:
    """`min` when smaller values of `metric` are better, else `max` (a guess from the `_`-separated name parts)."""
    return "min" if LOWER_IS_BETTER & set(metric.split("_")) else "max"


def pareto_front(x: np.ndarray, y: np.ndarray, x_sense: str = "min", y_sense: str = "max") -> np.ndarray:
    """Mask of the non-dominated points: no other point is at least as good in both and better in one."""
    gx = -np.asarray(x, float) if x_sense == "min" else np.asarray(x, float)  # larger = better from here on
    gy = -np.asarray(y, float) if y_sense == "min" else np.asarray(y, float)
    geq = (gx[None, :] >= gx[:, None]) & (gy[None, :] >= gy[:, None])       # [i, j]: j at least as good as i
    gt = (gx[None, :] > gx[:, None]) | (gy[None, :] > gy[:, None])
    return ~(geq & gt).any(axis=1)


def column_of(summary: pd.DataFrame, name: str) -> pd.Series | None:
    """Values of a metric (its group mean) or of a numeric group key, by name; None when absent."""
    if f"{name}_mean" in summary:
        return summary[f"{name}_mean"].astype(float)
    if name in key_columns(summary):
        return pd.to_numeric(summary[name], errors="coerce")
    return None


def interval_of(summary: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The t-interval of a metric's group mean as (lo, hi); the mean itself where undefined (n < 2) or for a key."""
    mean = column_of(summary, name).to_numpy(float)
    if f"{name}_ci_lo" not in summary:
        return mean, mean
    lo, hi = summary[f"{name}_ci_lo"].to_numpy(float), summary[f"{name}_ci_hi"].to_numpy(float)
    return np.where(np.isnan(lo), mean, lo), np.where(np.isnan(hi), mean, hi)


def error_of(summary: pd.DataFrame, name: str) -> np.ndarray:
    """Asymmetric error bars (below, above the mean) that span the t-interval."""
    mean = column_of(summary, name).to_numpy(float)
    lo, hi = interval_of(summary, name)
    return np.vstack([mean - lo, hi - mean])


def series_keys(summary: pd.DataFrame, x: str) -> list[str]:
    """Keys that tell the lines apart: every group key except the one the x axis varies (e.g. privacy.epsilon)."""
    return [k for k in key_columns(summary) if k != x and k.rsplit(".", 1)[-1] != x and k not in INFO_COLUMNS]


def row_labels(summary: pd.DataFrame, keys: list[str]) -> pd.Series:
    """`mechanism / model (edge-level DP)`-style labels of each row from the given keys."""
    text = (summary[keys].apply(lambda r: " / ".join(key_text(v) for v in r), axis=1) if keys
            else pd.Series(["all runs"] * len(summary), index=summary.index))
    if "privacy_unit" in summary:
        unit = summary["privacy_unit"].map(lambda u: f" ({u}-level DP)" if isinstance(u, str) else "")
        text = text + unit
    return text


def _ticks_at(ax: plt.Axes, values: np.ndarray) -> None:
    """On a log axis with few distinct values, put plain-number ticks at exactly those values."""
    distinct = np.unique([float(f"{v:.2g}") for v in np.unique(values[np.isfinite(values)])])
    if 0 < len(distinct) <= 8:
        ax.set_xticks(distinct, [f"{v:g}" for v in distinct])
        ax.xaxis.set_minor_formatter(NullFormatter())


def _legend(ax: plt.Axes, inside: int = 5, below: bool = False) -> None:
    """The legend inside the axes for a few lines, beside (or below, for side-by-side panels) for more."""
    if len(ax.get_legend_handles_labels()[0]) <= inside:
        ax.legend(fontsize=8)
    elif below:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    else:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    """Save a figure as PNG and PDF and close it."""
    paths = [out_dir / f"{stem}.{fmt}" for fmt in FORMATS]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def _reference_lines(ax: plt.Axes, summary: pd.DataFrame, ref: np.ndarray, metric: str, labels: pd.Series) -> None:
    """Rows without an x value (the non-private runs) as dashed horizontal lines with their t-interval as a band."""
    y = summary[f"{metric}_mean"].to_numpy(float)
    lo, hi = interval_of(summary, metric)
    for i, idx in enumerate(np.flatnonzero(ref)):
        color = f"C{(i + 5) % 10}"
        ax.axhline(y[idx], color=color, linestyle="--", linewidth=1.2, label=f"{labels.iloc[idx]} (no DP)")
        ax.axhspan(lo[idx], hi[idx], color=color, alpha=0.12, linewidth=0)


def _log_x(ax: plt.Axes, xs: np.ndarray) -> None:
    """A log x axis with plain-number ticks when every x is positive."""
    if len(xs) and (xs > 0).all():
        ax.set_xscale("log")
        _ticks_at(ax, xs)


def plot_metric_vs_x(summary: pd.DataFrame, metric: str, x: str, out_dir: Path) -> list[Path]:
    """`metric` against `x` (default: the spent epsilon), one line per mechanism/model, t-interval bands."""
    xs = column_of(summary, x)
    keys = series_keys(summary, x)
    labels = row_labels(summary, keys)
    lo, hi = interval_of(summary, metric)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    has_x = xs.notna() & summary[f"{metric}_mean"].notna()
    for i, name in enumerate(dict.fromkeys(labels[has_x])):
        rows = np.flatnonzero((has_x & (labels == name)).to_numpy())
        rows = rows[np.argsort(xs.to_numpy(float)[rows], kind="stable")]
        line_x = xs.to_numpy(float)[rows]
        ax.plot(line_x, summary[f"{metric}_mean"].to_numpy(float)[rows], marker="o", color=f"C{i % 10}",
                label=name)
        ax.fill_between(line_x, lo[rows], hi[rows], color=f"C{i % 10}", alpha=0.2, linewidth=0)
    _reference_lines(ax, summary, (xs.isna() & summary[f"{metric}_mean"].notna()).to_numpy(), metric, labels)
    if metric.endswith("eps_lower") and x == "epsilon" and has_x.any():
        # a valid audit never crosses this line: the lower bound cannot exceed the spent budget
        grid = np.sort(xs[has_x].to_numpy(float))
        ax.plot(grid, grid, color="k", linewidth=1, label="eps_lower = epsilon")
    _log_x(ax, xs[has_x].to_numpy(float))
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} (mean, band: {LEVEL} t-interval)")
    ax.set_title(f"{metric} vs {x}: mean and {LEVEL} t-interval over seeds")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return _save(fig, out_dir, f"{metric}_vs_{x}")


def unit_masks(summary: pd.DataFrame) -> dict[str | None, np.ndarray]:
    """Rows by privacy unit when the sweep has several (edge and node epsilons are not comparable), else all
    rows under None; with several units, rows without one (non-private) are a class of their own (None)."""
    units = summary["privacy_unit"] if "privacy_unit" in summary else pd.Series([None] * len(summary))
    named = sorted({u for u in units if isinstance(u, str)})
    if len(named) < 2:
        return {None: np.ones(len(summary), bool)}
    masks = {u: (units == u).to_numpy() for u in named}
    rest = ~np.logical_or.reduce(list(masks.values()))
    return masks | ({None: rest} if rest.any() else {})


def pareto_fronts(summary: pd.DataFrame, x: str, y: str, x_sense: str = "min",
                  y_sense: str = "max") -> dict[str | None, np.ndarray]:
    """Row positions of each privacy unit's Pareto front (see `unit_masks`), sorted by x, for the units with
    groups that have both x and y; groups without (e.g. non-private ones when x is epsilon) are on no front."""
    px, py = column_of(summary, x).to_numpy(float), column_of(summary, y).to_numpy(float)
    ok = ~np.isnan(px) & ~np.isnan(py)
    fronts = {}
    for unit, mask in unit_masks(summary).items():
        rows = np.flatnonzero(ok & mask)
        if len(rows):
            front = rows[pareto_front(px[rows], py[rows], x_sense, y_sense)]
            fronts[unit] = front[np.argsort(px[front], kind="stable")]
    return fronts


def _pareto_panel(ax: plt.Axes, summary: pd.DataFrame, x: str, y: str, rows: np.ndarray, front: np.ndarray,
                  colors: dict[str, str]) -> None:
    """One panel: the groups `rows` with t-interval error bars, their front joined, the non-private references."""
    px, py = column_of(summary, x).to_numpy(float), column_of(summary, y).to_numpy(float)
    labels = row_labels(summary, series_keys(summary, x))
    xerr, yerr = error_of(summary, x), error_of(summary, y)
    for name in dict.fromkeys(labels.iloc[rows]):
        m = rows[(labels.iloc[rows] == name).to_numpy()]
        ax.errorbar(px[m], py[m], xerr=xerr[:, m], yerr=yerr[:, m], fmt="o", color=colors[name], capsize=2,
                    label=name)
    ax.plot(px[front], py[front], "o-", color="C3", markerfacecolor="none", markersize=11, linewidth=1.5,
            label="Pareto front")
    if f"{y}_mean" in summary:
        _reference_lines(ax, summary, np.isnan(px) & ~np.isnan(py), y, labels)
    if x == "epsilon":
        _log_x(ax, px[rows])
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, below=True)


def plot_pareto(summary: pd.DataFrame, x: str, y: str, out_dir: Path, x_sense: str | None = None,
                y_sense: str | None = None) -> list[Path]:
    """`y` against `x` for every group (coloured by mechanism/model) with the Pareto front (best trade-offs) joined;
    one panel and front per privacy unit when the sweep has several."""
    x_sense, y_sense = x_sense or sense_of(x), y_sense or sense_of(y)
    fronts = pareto_fronts(summary, x, y, x_sense, y_sense) or {None: np.zeros(0, int)}
    masks = unit_masks(summary)
    ok = (column_of(summary, x).notna() & column_of(summary, y).notna()).to_numpy()
    labels = row_labels(summary, series_keys(summary, x))
    colors = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(labels[ok]))}
    fig, axes = plt.subplots(1, len(fronts), figsize=(6.4 * len(fronts), 4.4), sharey=True, squeeze=False)
    for ax, (unit, front) in zip(axes[0], fronts.items()):
        _pareto_panel(ax, summary, x, y, np.flatnonzero(ok & masks.get(unit, ok)), front, colors)
        ax.set_xlabel(f"{x} ({'lower' if x_sense == 'min' else 'higher'} is better)")
        if len(fronts) > 1:
            ax.set_title(f"{unit}-level DP" if unit else "no privacy unit")
    axes[0][0].set_ylabel(f"{y} ({'lower' if y_sense == 'min' else 'higher'} is better)")
    per_unit = " per privacy unit" if len(fronts) > 1 else ""
    fig.suptitle(f"Pareto front{per_unit}: {y} vs {x} (group means, error bars: {LEVEL} t-interval over seeds)",
                 fontsize=10)
    return _save(fig, out_dir, f"pareto_{x}_{y}")
