"""Report of the attacks study: a table and plots of attack AUROC and eps_lower against the formal epsilon.

    python experiments/attacks_report.py outputs/experiments/attacks [--out experiments/attacks_figures]

Reads every `metrics.json` under the sweep folder (one per run), writes `attacks_table.csv`,
`attacks_auroc.png` and `attacks_eps_lower.png` into `--out`, and prints the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

AUROCS = {"attack_linkteller_auroc": "LinkTeller", "attack_lsa_auroc": "LSA attack-0",
          "attack_explain_sim_auroc": "explanation similarity", "attack_mia_auroc": "membership (best)"}
BOUNDS = {"attack_adjacency_eps_lower": "adjacency audit",
          "attack_canary_eps_lower": "canary audit (one run, dependent)"}
COLUMNS = ["mechanism", "epsilon", "test_acc", *AUROCS, "attack_lsa_mlp_auroc", "attack_mia_tpr_at_1fpr",
           "attack_linkteller_precision_at_k", "attack_linkteller_recall_at_k", *BOUNDS, "eps_lower"]


def load_runs(root: Path) -> pd.DataFrame:
    """One row per finished run under `root`, with the columns of the study."""
    rows = [json.loads(p.read_text()) for p in sorted(root.rglob("metrics.json"))]
    frame = pd.DataFrame(rows)
    frame["mechanism"] = frame["mechanism"].fillna("none")
    return frame.reindex(columns=COLUMNS).sort_values(["mechanism", "epsilon"], na_position="first")


def plot_aurocs(frame: pd.DataFrame, path: Path) -> None:
    """Attack AUROC against epsilon, one panel per attack, one line per mechanism, the non-private level dashed."""
    fig, axes = plt.subplots(1, len(AUROCS), figsize=(4 * len(AUROCS), 3.4), sharey=True)
    base = frame[frame.mechanism == "none"]
    for ax, (key, title) in zip(axes, AUROCS.items()):
        for mech, rows in frame[frame.mechanism != "none"].groupby("mechanism"):
            ax.plot(rows.epsilon, rows[key], marker="o", label=mech)
        if not base.empty and base[key].notna().any():
            ax.axhline(base[key].iloc[0], ls="--", c="k", lw=1, label="no privacy")
        ax.axhline(0.5, ls=":", c="grey", lw=1)
        ax.set(title=title, xlabel="formal epsilon (edge-level)")
    axes[0].set_ylabel("attack AUROC")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def plot_bounds(frame: pd.DataFrame, path: Path) -> None:
    """eps_lower of each audit against the formal epsilon, with the line eps_lower = epsilon."""
    private = frame[frame.mechanism != "none"]
    fig, ax = plt.subplots(figsize=(5, 4))
    eps = sorted(private.epsilon.dropna().unique())
    ax.plot(eps, eps, c="k", lw=1, label="eps_lower = epsilon")
    for (mech, rows), marker in zip(private.groupby("mechanism"), "osd^v"):
        for key, label in BOUNDS.items():
            if rows[key].notna().any():
                ax.plot(rows.epsilon, rows[key], marker=marker, ls="-" if "adjacency" in key else "--",
                        label=f"{mech}: {label}")
    ax.set(xlabel="formal epsilon (edge-level)", ylabel="empirical eps_lower (95%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    """Collect, tabulate, plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, default=Path("experiments/attacks_figures"))
    args = parser.parse_args()
    frame = load_runs(args.root)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "attacks_table.csv", index=False)
    plot_aurocs(frame, args.out / "attacks_auroc.png")
    plot_bounds(frame, args.out / "attacks_eps_lower.png")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 3):
        print(frame.rename(columns=lambda c: c.replace("attack_", "")).to_string(index=False))


if __name__ == "__main__":
    main()
