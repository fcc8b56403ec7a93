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
from gnnrisk.report.tables import key_columns, key_text  # noqa: E402

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


def std_of(summary: pd.DataFrame, name: str) -> np.ndarray:
    """The group std of a metric (0 where undefined or for a key)."""
    col = f"{name}_std"
    return summary[col].fillna(0.0).to_numpy(float) if col in summary else np.zeros(len(summary))


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


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    """Save a figure as PNG and PDF and close it."""
    paths = [out_dir / f"{stem}.{fmt}" for fmt in FORMATS]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def _reference_lines(ax: plt.Axes, summary: pd.DataFrame, ref: pd.Series, metric: str, labels: pd.Series) -> None:
    """Rows without an x value (the non-private runs) as horizontal lines with a ±std band."""
    y, s = summary[f"{metric}_mean"].to_numpy(float), std_of(summary, metric)
    for i, idx in enumerate(np.flatnonzero(ref.to_numpy())):
        color = f"C{(i + 5) % 10}"
        ax.axhline(y[idx], color=color, linestyle="--", linewidth=1.2, label=f"{labels.iloc[idx]} (no DP)")
        ax.axhspan(y[idx] - s[idx], y[idx] + s[idx], color=color, alpha=0.12, linewidth=0)


def plot_metric_vs_x(summary: pd.DataFrame, metric: str, x: str, out_dir: Path) -> list[Path]:
    """`metric` against `x` (default: the spent epsilon), one line per mechanism/model, std error bars."""
    xs = column_of(summary, x)
    keys = series_keys(summary, x)
    labels = row_labels(summary, keys)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    has_x = xs.notna() & summary[f"{metric}_mean"].notna()
    for i, name in enumerate(dict.fromkeys(labels[has_x])):
        rows = summary[has_x & (labels == name)].assign(_x=xs).sort_values("_x")
        ax.errorbar(rows["_x"], rows[f"{metric}_mean"], yerr=std_of(rows, metric), marker="o", capsize=3,
                    color=f"C{i % 10}", label=name)
    _reference_lines(ax, summary, xs.isna() & summary[f"{metric}_mean"].notna(), metric, labels)
    if metric.endswith("eps_lower") and x == "epsilon" and has_x.any():
        # a valid audit never crosses this line: the lower bound cannot exceed the spent budget
        grid = np.sort(xs[has_x].to_numpy(float))
        ax.plot(grid, grid, color="k", linewidth=1, label="eps_lower = epsilon")
    if has_x.any() and (xs[has_x] > 0).all():
        ax.set_xscale("log")
        _ticks_at(ax, xs[has_x].to_numpy(float))
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {x} (mean ± std over seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, f"{metric}_vs_{x}")


def plot_pareto(summary: pd.DataFrame, x: str, y: str, out_dir: Path, x_sense: str | None = None,
                y_sense: str | None = None) -> list[Path]:
    """`y` against `x` for every group (coloured by mechanism/model), the Pareto front (best trade-offs) joined."""
    x_sense, y_sense = x_sense or sense_of(x), y_sense or sense_of(y)
    xs, ys = column_of(summary, x), column_of(summary, y)
    labels = row_labels(summary, series_keys(summary, x))
    ok = (xs.notna() & ys.notna()).to_numpy()
    px, py = xs.to_numpy(float), ys.to_numpy(float)
    xerr, yerr = std_of(summary, x), std_of(summary, y)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, name in enumerate(dict.fromkeys(labels[ok])):
        m = ok & (labels == name).to_numpy()
        ax.errorbar(px[m], py[m], xerr=xerr[m], yerr=yerr[m], fmt="o", color=f"C{i % 10}", capsize=2,
                    label=name)
    front = np.flatnonzero(ok)[pareto_front(px[ok], py[ok], x_sense, y_sense)]
    front = front[np.argsort(px[front])]
    ax.plot(px[front], py[front], "o-", color="C3", markerfacecolor="none", markersize=11, linewidth=1.5,
            label="Pareto front")
    if f"{y}_mean" in summary:
        _reference_lines(ax, summary, pd.Series(~ok & ys.notna().to_numpy()), y, labels)
    if ok.any() and (px[ok] > 0).all() and x == "epsilon":
        ax.set_xscale("log")
        _ticks_at(ax, px[ok])
    ax.set_xlabel(f"{x} ({'lower' if x_sense == 'min' else 'higher'} is better)")
    ax.set_ylabel(f"{y} ({'lower' if y_sense == 'min' else 'higher'} is better)")
    ax.set_title(f"Pareto front: {y} vs {x} (group means ± std)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, f"pareto_{x}_{y}")
