"""The feedback-loop figure: attention share, recorded vs true rate and AUROC over the rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def plot_feedback(table: pd.DataFrame, refs: dict[str, float], names: Sequence[str], path: Path) -> Path:
    """Save three panels over rounds: attention share per group (dashed: true share), rates, AUROC.

    Two rows (the shares and the rates side by side, the AUROC under them), so that the figure stays legible
    at the width of a page or a notebook's text column."""
    fig = plt.figure(figsize=(8, 6.5))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.25, 1))
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    mode = table["mode"].iloc[0]
    for i, name in enumerate(names):  # one line per group
        c = colors[i % len(colors)]
        axes[0].plot(table["round"], table[f"attention_share_{name}"], marker="o", color=c, label=name)
        axes[0].axhline(refs[f"true_share_{name}"], ls="--", color=c, lw=1, label=f"{name}: share of true positives")
        axes[1].plot(table["round"], table[f"observed_rate_{name}"], marker="o", color=c,
                     label=f"{name}: recorded this round")
        axes[1].axhline(refs[f"true_rate_{name}"], ls="--", color=c, lw=1, label=f"{name}: true rate")
    axes[2].plot(table["round"], table["auroc_true"], marker="o", color="black")
    axes[0].set(title=f"attention share (mode={mode})", xlabel="round", ylabel="share of attended nodes", ylim=(0, 1))
    axes[1].set(title="positive rate per group", xlabel="round", ylabel="rate")
    axes[2].set(title="model AUROC vs y_true (test nodes)", xlabel="round", ylabel="AUROC")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    for ax in axes[:2]:
        ax.legend(fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
