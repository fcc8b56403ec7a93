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


def plot_reliability(prob_pos: Tensor, y: Tensor, y_true: Tensor | None, group: Tensor,
                     names: Sequence[str], bins: int, path: Path) -> Path:
    """Save a reliability diagram per group (equal-width bins) against the record and, if known, the truth."""
    p = prob_pos.detach().cpu().double().numpy()
    g = group.cpu().numpy()
    targets = [("observed labels (y)", y.cpu().numpy())]
    if y_true is not None:
        targets.append(("ground truth (y_true)", y_true.cpu().numpy()))
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4.5), squeeze=False)
    for ax, (title, t) in zip(axes[0], targets):
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
        for i, name in enumerate(names):  # one line per group
            m = g == i
            if m.sum() == 0 or np.unique(t[m]).size < 2:
                continue
            frac, mean_pred = calibration_curve(t[m], p[m], n_bins=bins, strategy="uniform")
            ax.plot(mean_pred, frac, marker="o", label=f"{name} (n={int(m.sum())})")
        ax.set(title=f"vs {title}", xlabel="mean predicted probability", ylabel="fraction positive",
               xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
