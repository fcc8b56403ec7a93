"""Plots: a metric against epsilon per mechanism, a metric's group means by any varied key (point plots, for
sweeps without an epsilon axis), and any metric against any other with its Pareto front.

Titles and axes are words (`gnnrisk.report.labels`); every interval is the summary's Student-t interval."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from matplotlib.ticker import NullFormatter  # noqa: E402

from gnnrisk.report.aggregate import INFO_COLUMNS  # noqa: E402
from gnnrisk.report.labels import is_attack_auroc, label  # noqa: E402
from gnnrisk.report.marks import clipped_ends, face_note, make_room, mark_clipped  # noqa: E402
from gnnrisk.report.ranges import clip_interval  # noqa: E402
from gnnrisk.report.tables import LEVEL, key_columns, key_text  # noqa: E402

FORMATS = ("png", "pdf")
CHANCE_AUROC = 0.5
DODGE_WIDTH = 0.7     # share of the space between two categories that the dodged series of one category fill
MARKERS = ("o", "s", "^", "v", "P", "X")  # after 10 colours, the next 10 series change marker
COUNTERPART_MAX_LINES = 4  # metric-vs-x plots draw the true-label counterpart up to this many lines
EXTRA = "\x00"   # starts the label of a reference mark: the legend lists it after the series, without this mark
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
    """The t-interval of a metric's group mean as (lo, hi), clipped to the metric's range (`ranges`); the mean
    itself where undefined (n < 2) or for a key."""
    mean = column_of(summary, name).to_numpy(float)
    if f"{name}_ci_lo" not in summary:
        return mean, mean
    lo, hi, _, _ = clip_interval(name, summary[f"{name}_ci_lo"], summary[f"{name}_ci_hi"])
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


def _legend(ax: plt.Axes, below: bool = False, title: str | None = None) -> None:
    """The legend outside the data area: beside the axes, or below them (side-by-side panels); the series first,
    the reference marks (chance, the true-label counterpart: labels starting with `EXTRA`) after them."""
    handles, texts = ax.get_legend_handles_labels()
    if not handles:
        return
    order = sorted(range(len(texts)), key=lambda i: texts[i].startswith(EXTRA))
    handles, texts = [handles[i] for i in order], [texts[i].removeprefix(EXTRA) for i in order]
    if below:
        ax.legend(handles, texts, fontsize=8, title=title, title_fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.15), ncol=2)
    else:
        ax.legend(handles, texts, fontsize=8, title=title, title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


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


def _chance_line(ax: plt.Axes, metric: str) -> None:
    """An attack's or audit's AUROC: a dotted line at 0.5, what guessing scores."""
    if is_attack_auroc(metric):
        ax.axhline(CHANCE_AUROC, color="0.35", linestyle=":", linewidth=1.2, label=f"{EXTRA}chance (AUROC 0.5)")


def _log_x(ax: plt.Axes, xs: np.ndarray) -> bool:
    """A log x axis with plain-number ticks when every x is positive; whether it is one."""
    if len(xs) and (xs > 0).all():
        ax.set_xscale("log")
        _ticks_at(ax, xs)
        return True
    return False


def units_of(summary: pd.DataFrame, rows: np.ndarray | None = None) -> list[object]:
    """The privacy_unit values of `rows` (all rows by default): what a spent epsilon of theirs is about."""
    if "privacy_unit" not in summary:
        return []
    units = summary["privacy_unit"]
    return list(units.iloc[rows] if rows is not None else units)


def metric_vs_x_figure(summary: pd.DataFrame, metric: str, x: str, counterpart: str | None = None) -> plt.Figure:
    """The figure of `plot_metric_vs_x`; `counterpart` (e.g. `<metric>_true`) as a thin dotted line per series
    when there are at most COUNTERPART_MAX_LINES series (more would hide the data)."""
    xs = column_of(summary, x)
    keys = series_keys(summary, x)
    labels = row_labels(summary, keys)
    lo, hi = interval_of(summary, metric)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    has_x = xs.notna() & summary[f"{metric}_mean"].notna()
    names = list(dict.fromkeys(labels[has_x]))
    other = (counterpart if counterpart is not None and f"{counterpart}_mean" in summary
             and len(names) <= COUNTERPART_MAX_LINES else None)
    clipped = False
    for i, name in enumerate(names):
        rows = np.flatnonzero((has_x & (labels == name)).to_numpy())
        rows = rows[np.argsort(xs.to_numpy(float)[rows], kind="stable")]
        line_x = xs.to_numpy(float)[rows]
        ax.plot(line_x, summary[f"{metric}_mean"].to_numpy(float)[rows], marker="o", color=f"C{i % 10}",
                label=name)
        ax.fill_between(line_x, lo[rows], hi[rows], color=f"C{i % 10}", alpha=0.2, linewidth=0)
        clipped |= mark_clipped(ax, summary, metric, rows, line_x, f"C{i % 10}")
        if other is not None:
            ax.plot(line_x, summary[f"{other}_mean"].to_numpy(float)[rows], marker="D", markerfacecolor="none",
                    linestyle=":", linewidth=1, color=f"C{i % 10}")
    if other is not None and has_x.any():
        ax.plot([], [], marker="D", markerfacecolor="none", linestyle=":", color="0.35",
                label=f"{EXTRA}dotted: {label(other)}")
    reference = (xs.isna() & summary[f"{metric}_mean"].notna()).to_numpy()
    _reference_lines(ax, summary, reference, metric, labels)
    _chance_line(ax, metric)
    if reference.any() and has_x.any():  # the references' clipped ends at the right edge of the data
        right = np.full(int(reference.sum()), float(xs[has_x].max()))
        clipped |= mark_clipped(ax, summary, metric, np.flatnonzero(reference), right, "0.3")
    x_words = label(x, units_of(summary, np.flatnonzero(has_x.to_numpy())))
    if metric.endswith("eps_lower") and x == "epsilon" and has_x.any():
        # a valid audit never crosses this line: the lower bound cannot exceed the spent budget
        grid = np.sort(xs[has_x].to_numpy(float))
        ax.plot(grid, grid, color="k", linewidth=1, label="lower bound = spent ε (a valid audit stays below)")
    log = _log_x(ax, xs[has_x].to_numpy(float))
    ax.set_xlabel(x_words + (", log scale" if log else ""))
    ax.set_ylabel(label(metric))
    ax.set_title(f"{label(metric)} vs {x_words}\nmean over seeds, band: {LEVEL} Student-t interval", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    face_note(ax, summary, metric, np.flatnonzero(summary[f"{metric}_mean"].notna().to_numpy()), clipped)
    _legend(ax, title=" / ".join(label(k) for k in keys) or None)
    return fig


def plot_metric_vs_x(summary: pd.DataFrame, metric: str, x: str, out_dir: Path,
                     counterpart: str | None = None) -> list[Path]:
    """`metric` against `x` (default: the spent epsilon), one line per mechanism/model, t-interval bands;
    the non-private groups as dashed lines, chance for an attack's AUROC, `counterpart` as dotted lines."""
    return _save(metric_vs_x_figure(summary, metric, x, counterpart), out_dir, f"{metric}_vs_{x}")


def plot_keys(summary: pd.DataFrame) -> list[str]:
    """The varied keys a point plot groups by (x = the first, series = the others): the summary's group keys."""
    return [k for k in key_columns(summary) if k not in INFO_COLUMNS]


def dodge_offsets(n: int, width: float = DODGE_WIDTH) -> np.ndarray:
    """Horizontal offsets of `n` series at one category, centred on it, inside +-width/2: error bars never overlap."""
    if n <= 1:
        return np.zeros(max(n, 0))
    step = width / n
    return (np.arange(n) - (n - 1) / 2) * step


def categories(values: pd.Series) -> list[str]:
    """The distinct values of an x key as tick texts: numbers in numeric order (missing first), others as met."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum() and numeric.notna().any():
        order = numeric.fillna(-np.inf).sort_values(kind="stable").index
        values = values.loc[order]
    return list(dict.fromkeys(values.map(key_text)))


def metric_by_keys_figure(summary: pd.DataFrame, metric: str, x_key: str | None = None,
                          counterpart: str | None = None) -> plt.Figure:
    """The figure of `plot_metric_by_keys`."""
    keys = plot_keys(summary)
    x_key = x_key if x_key is not None else (keys[0] if keys else None)
    series = [k for k in keys if k != x_key]
    xs = summary[x_key].map(key_text) if x_key is not None else pd.Series("all runs", index=summary.index)
    cats = categories(summary[x_key]) if x_key is not None else ["all runs"]
    position = {c: i for i, c in enumerate(cats)}
    labels = row_labels(summary, series)
    mean = summary[f"{metric}_mean"].to_numpy(float)
    err = error_of(summary, metric)
    other = counterpart if counterpart is not None and f"{counterpart}_mean" in summary else None
    names = list(dict.fromkeys(labels[~np.isnan(mean)]))
    offsets = dodge_offsets(len(names))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(cats) + 3.0), 4.4))
    clipped = False
    for i, name in enumerate(names):
        rows = np.flatnonzero((labels == name).to_numpy() & ~np.isnan(mean))
        px = np.array([position[c] for c in xs.iloc[rows]], float) + offsets[i]
        color, marker = f"C{i % 10}", MARKERS[(i // 10) % len(MARKERS)]
        ax.errorbar(px, mean[rows], yerr=err[:, rows], fmt=marker, color=color, capsize=3, markersize=6,
                    label=name if len(names) > 1 or series else None)
        clipped |= mark_clipped(ax, summary, metric, rows, px, color)
        if other is not None:
            ax.plot(px, summary[f"{other}_mean"].to_numpy(float)[rows], marker="D", markerfacecolor="none",
                    linestyle="none", color=color, markersize=6)
    if other is not None and names:
        ax.plot([], [], marker="D", markerfacecolor="none", linestyle="none", color="0.35",
                label=f"{EXTRA}hollow: {label(other)}")
    _chance_line(ax, metric)
    face_note(ax, summary, metric, np.flatnonzero(~np.isnan(mean)), clipped)  # after the reference marks
    ax.set_xticks(range(len(cats)), cats, rotation=30 if sum(len(c) for c in cats) > 60 else 0,
                  ha="right" if sum(len(c) for c in cats) > 60 else "center")
    ax.set_xlim(-0.5, len(cats) - 0.5)
    x_words = label(x_key) if x_key is not None else "group"
    ax.set_xlabel(x_words)
    ax.set_ylabel(label(metric))
    ax.set_title(f"{label(metric)} by {x_words}\nmean over seeds, error bars: {LEVEL} Student-t interval",
                 fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    _legend(ax, title=" / ".join(label(k) for k in series) or None)
    return fig


def plot_metric_by_keys(summary: pd.DataFrame, metric: str, out_dir: Path, x_key: str | None = None,
                        counterpart: str | None = None) -> list[Path]:
    """Point plot of `metric`'s group means with t-interval error bars: x = `x_key` (default: the first varied key),
    one dodged series per combination of the other keys; chance for an attack's AUROC, `counterpart` hollow."""
    keys = plot_keys(summary)
    x_key = x_key if x_key is not None else (keys[0] if keys else None)
    stem = f"{metric}_by_{x_key.replace('.', '_') if x_key is not None else 'group'}"
    return _save(metric_by_keys_figure(summary, metric, x_key, counterpart), out_dir, stem)


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
                  colors: dict[str, str]) -> bool:
    """One panel: the groups `rows` with t-interval error bars, their front joined, the non-private references."""
    px, py = column_of(summary, x).to_numpy(float), column_of(summary, y).to_numpy(float)
    labels = row_labels(summary, series_keys(summary, x))
    xerr, yerr = error_of(summary, x), error_of(summary, y)
    clipped = False
    for name in dict.fromkeys(labels.iloc[rows]):
        m = rows[(labels.iloc[rows] == name).to_numpy()]
        ax.errorbar(px[m], py[m], xerr=xerr[:, m], yerr=yerr[:, m], fmt="o", color=colors[name], capsize=2,
                    label=name)
        clipped |= mark_clipped(ax, summary, y, m, px[m], colors[name])
        clipped |= mark_clipped(ax, summary, x, m, py[m], colors[name], horizontal=True)
    ax.plot(px[front], py[front], "o-", color="C3", markerfacecolor="none", markersize=11, linewidth=1.5,
            label="Pareto front")
    if f"{y}_mean" in summary:
        reference = np.isnan(px) & ~np.isnan(py)
        _reference_lines(ax, summary, reference, y, labels)
        low, high = clipped_ends(summary, y)
        clipped |= bool(((low | high) & reference).any())  # a reference's band clipped: said in the note
    if x == "epsilon":
        _log_x(ax, px[rows])
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, below=True, title=" / ".join(label(k) for k in series_keys(summary, x)) or None)
    return clipped


def pareto_figure(summary: pd.DataFrame, x: str, y: str, x_sense: str | None = None,
                  y_sense: str | None = None) -> plt.Figure:
    """The figure of `plot_pareto`."""
    x_sense, y_sense = x_sense or sense_of(x), y_sense or sense_of(y)
    fronts = pareto_fronts(summary, x, y, x_sense, y_sense) or {None: np.zeros(0, int)}
    masks = unit_masks(summary)
    ok = (column_of(summary, x).notna() & column_of(summary, y).notna()).to_numpy()
    labels = row_labels(summary, series_keys(summary, x))
    colors = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(labels[ok]))}
    fig, axes = plt.subplots(1, len(fronts), figsize=(6.4 * len(fronts), 4.4), sharey=True, squeeze=False)
    panels = []
    for ax, (unit, front) in zip(axes[0], fronts.items()):
        rows = np.flatnonzero(ok & masks.get(unit, ok))
        panels.append((ax, rows, _pareto_panel(ax, summary, x, y, rows, front, colors)))
        _chance_line(ax, y)
        ax.set_xlabel(f"{label(x, units_of(summary, rows))} ({'lower' if x_sense == 'min' else 'higher'} is better)")
        if len(fronts) > 1:
            ax.set_title(f"{unit}-level DP" if unit else "no privacy unit")
    axes[0][0].set_ylabel(f"{label(y)} ({'lower' if y_sense == 'min' else 'higher'} is better)")
    texts = [face_note(ax, summary, y, rows, clipped, pad=False) for ax, rows, clipped in panels]
    if any(texts):  # the panels share the y axis: lowered once, for the longest note
        make_room(axes[0][0], max(t.count("\n") + 1 for t in texts if t))
    per_unit = " per privacy unit" if len(fronts) > 1 else ""
    fig.suptitle(f"Pareto front{per_unit}: {label(y)} vs {label(x, units_of(summary, np.flatnonzero(ok)))}\n"
                 f"group means, error bars: {LEVEL} Student-t interval over seeds", fontsize=10, y=0.99)
    fig.subplots_adjust(top=0.80 if len(fronts) > 1 else 0.85)  # room for the two title lines above the panels'
    return fig


def plot_pareto(summary: pd.DataFrame, x: str, y: str, out_dir: Path, x_sense: str | None = None,
                y_sense: str | None = None) -> list[Path]:
    """`y` against `x` for every group (coloured by mechanism/model) with the Pareto front (best trade-offs) joined;
    one panel and front per privacy unit when the sweep has several."""
    return _save(pareto_figure(summary, x, y, x_sense, y_sense), out_dir, f"pareto_{x}_{y}")
