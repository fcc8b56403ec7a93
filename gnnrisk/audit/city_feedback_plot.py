"""The city feedback loop's figure: per group, patrol, recorded and true shares over periods; hit rate and overlap."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def plot_city_feedback(table: pd.DataFrame, names: Sequence[str], path: Path) -> Path:
    """Save two panels over periods: each group's patrol, recorded, true, resident shares; hit rate, overlap, Gini."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    x = table["period"]
    warm = table.loc[table["phase"] == "warmup", "period"]
    for ax in axes:
        if len(warm):
            ax.axvspan(warm.min() - 0.5, warm.max() + 0.5, color="0.92", lw=0)
    for i, name in enumerate(names):  # one colour per group
        c = colors[i % len(colors)]
        axes[0].plot(x, table[f"patrol_share_{name}"], "-o", color=c, ms=3, label=f"{name}: patrol share")
        axes[0].plot(x, table[f"recorded_share_{name}"], "--", color=c, label=f"{name}: recorded share")
        axes[0].plot(x, table[f"true_share_{name}"], ":", color=c, lw=1.5, label=f"{name}: true share")
        axes[0].axhline(float(table[f"resident_share_{name}"].iloc[0]), color=c, lw=0.8, alpha=0.5)
    for col, style in (("hit_rate", "-o"), ("overlap", "-s"), ("gini_recorded", "-^")):
        axes[1].plot(x, table[col], style, ms=3, label=col.replace("_", " "))
    mode = table["mode"].iloc[0]
    axes[0].set(title=f"shares per group (mode={mode}; grey: warm-up, static patrols; thin: residents)",
                xlabel="period", ylabel="share", ylim=(0, 1))
    axes[1].set(title="patrolled set: hit rate (true incidents), overlap with last period; Gini of record",
                xlabel="period", ylim=(0, 1))
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.title.set_fontsize(9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
