"""Per-group reliability diagram: predicted probability against the observed frequency of the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from torch import Tensor  # noqa: E402


def bin_counts(prob_pos: np.ndarray, bins: int) -> np.ndarray:
    """How many predictions fall into each of `bins` equal-width bins of [0, 1] (sklearn's uniform binning)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], prob_pos)  # the bin calibration_curve assigns
    return np.bincount(index, minlength=bins)


def plot_reliability(prob_pos: Tensor, y: Tensor, y_true: Tensor | None, group: Tensor,
                     names: Sequence[str], bins: int, path: Path) -> Path:
    """Save a reliability diagram per group (equal-width bins) against the record and, if known, the truth.

    Under each diagram, the number of predictions per bin and group: a point resting on a handful of
    nodes is visible as such.
    """
    p = prob_pos.detach().cpu().double().numpy()
    g = group.cpu().numpy()
    targets = [("observed labels (y)", y.cpu().numpy())]
    if y_true is not None:
        targets.append(("ground truth (y_true)", y_true.cpu().numpy()))
    fig, axes = plt.subplots(2, len(targets), figsize=(5 * len(targets), 6), squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / bins
    centres = (np.arange(bins) + 0.5) * width
    shown = [i for i in range(len(names)) if (g == i).sum() > 0]
    for col, (title, t) in enumerate(targets):
        ax, counts_ax = axes[0, col], axes[1, col]
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
        for k, i in enumerate(shown):  # one line per group, its bin counts as dodged bars below
            m = g == i
            colour = f"C{k}"
            counts_ax.bar(centres - width / 2 + (k + 0.5) * width / len(shown), bin_counts(p[m], bins),
                          width=width / len(shown), color=colour, label=names[i])
            if np.unique(t[m]).size < 2:
                continue
            frac, mean_pred = calibration_curve(t[m], p[m], n_bins=bins, strategy="uniform")
            ax.plot(mean_pred, frac, marker="o", color=colour, label=f"{names[i]} (n={int(m.sum())})")
        ax.set(title=f"vs {title}", ylabel="fraction positive", xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left", fontsize=8)
        counts_ax.set(xlabel="mean predicted probability", ylabel="nodes per bin", xlim=(0, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
