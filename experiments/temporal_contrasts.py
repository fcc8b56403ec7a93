"""Paired contrasts of the temporal study, seed by seed, from its run folders.

Runs of one seed share the population, the split and the origins, so each contrast is a mean over
seeds of per-seed differences with its 95% Student-t interval (`*` = excludes 0). Three tables:
forecasters against the references (AUROC against the truth, horizons 1 and 2), the utility cost of
continual-release privacy, and the feedback loop's minority attention share per period by mode.

    python experiments/temporal_contrasts.py [outputs/temporal] [--figures experiments/temporal_figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import gnnrisk.report as report
from gnnrisk.report.aggregate import t_interval
from gnnrisk.report.contrasts import markdown_table, mean_cell, paired_cell

FORECASTERS = ("gconv_gru", "gconv_lstm", "lstm", "sage", "gcn", "mlp")
CONTRASTS = (("gconv_gru", "lstm"), ("gconv_gru", "sage"), ("gconv_gru", "gcn"), ("gconv_gru", "mlp"),
             ("gconv_lstm", "lstm"), ("gconv_lstm", "sage"), ("gconv_gru", "gconv_lstm"))
METRICS = ("test_auroc_true", "h2_test_auroc_true", "test_auroc")
PRIVATE = (("lapgraph", "gconv_gru", 1.0), ("lapgraph", "gconv_gru", 16.0), ("edgerand", "gconv_gru", 8.0),
           ("dp_mlp", "lstm", 1.0), ("dp_mlp", "lstm", 4.0), ("dp_mlp", "lstm", 16.0))


def select(runs: pd.DataFrame, privacy: str, model: str, epsilon: float | None = None,
           audit: str = "none", mode: str | None = None) -> pd.DataFrame:
    """Finished runs of one cell, one per seed, indexed by seed."""
    rows = runs[(runs["status"] == "finished") & (runs["cfg.privacy.name"] == privacy)
                & (runs["cfg.model.name"] == model) & (runs["cfg.audit.name"] == audit)]
    if epsilon is not None:
        rows = rows[np.isclose(pd.to_numeric(rows["cfg.privacy.epsilon"], errors="coerce"), epsilon)]
    if mode is not None:
        rows = rows[rows.get("cfg.audit.mode", pd.Series(index=rows.index, dtype=object)) == mode]
    return rows.drop_duplicates("cfg.seed").set_index("cfg.seed")




def forecaster_tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means per forecaster, and the paired contrasts, per metric."""
    means = pd.DataFrame({m: {name: mean_cell(select(runs, "none", name)[m]) for name in FORECASTERS}
                          for m in METRICS})
    pairs = pd.DataFrame({m: {f"{a} − {b}": paired_cell(select(runs, "none", a)[m] - select(runs, "none", b)[m])
                              for a, b in CONTRASTS} for m in METRICS})
    return means, pairs


def privacy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each private cell: spent epsilons, its AUROC, and paired differences to the non-private model and the LSTM."""
    out = {}
    for mech, model, eps in PRIVATE:
        rows = select(runs, mech, model, eps)
        if rows.empty:
            continue
        event = rows["epsilon_event"].iloc[0] if "epsilon_event" in rows and rows["epsilon_event"].notna().any() else None
        out[f"{mech} ({model}) ε={eps:g}"] = {
            "privacy unit": rows["privacy_unit"].iloc[0],
            "spent ε (whole horizon)": f"{rows['epsilon'].max():.3g}",
            "ε per tie per period": "–" if event is None else f"{event:.3g}",
            "test_auroc_true": mean_cell(rows["test_auroc_true"]),
            "− non-private, same model": paired_cell(rows["test_auroc_true"]
                                                     - select(runs, "none", model)["test_auroc_true"]),
            "− non-private lstm": paired_cell(rows["test_auroc_true"] - select(runs, "none", "lstm")["test_auroc_true"]),
        }
    return pd.DataFrame(out).T


def feedback_tables(runs: pd.DataFrame, sweep: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Minority attention share per period and mode (mean over seeds), and the paired mode contrasts."""
    per_period, summary = {}, {}
    for mode in ("none", "ipw", "random"):
        rows = select(runs, "none", "mlp", audit="feedback", mode=mode)
        if rows.empty:
            continue
        tables = [pd.read_csv(sweep / run / "feedback.csv").set_index("period") for run in rows["run"]]
        share = pd.concat([t["attention_share_minority"] for t in tables], axis=1)
        per_period[mode] = share.apply(lambda r: mean_cell(r, 3).split(" (")[0], axis=1)
        summary[mode] = {"minority attention share, mean over periods": mean_cell(rows["feedback_attention_share_minority_mean"]),
                         "final period": mean_cell(rows["feedback_attention_share_minority_final"]),
                         "minority share of true positives": mean_cell(rows["feedback_true_share_minority"]),
                         "minority share of the population": mean_cell(rows["feedback_population_share_minority"])}
    key = "feedback_attention_share_minority_mean"
    pairs = {}
    for a, b in (("none", "random"), ("ipw", "random"), ("none", "ipw")):
        ra, rb = select(runs, "none", "mlp", audit="feedback", mode=a), select(runs, "none", "mlp", audit="feedback", mode=b)
        if not ra.empty and not rb.empty:
            pairs[f"{a} − {b}"] = {"mean minority attention share": paired_cell(ra[key] - rb[key])}
    table = pd.DataFrame(per_period)
    table.index = [f"period {p}" for p in table.index]
    return table, pd.concat([pd.DataFrame(summary).T, pd.DataFrame(pairs).T])


def per_period_figures(runs: pd.DataFrame, sweep: Path, folder: Path) -> list[Path]:
    """Metric vs period: forecast AUROC (truth) per target period and model; minority attention share per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, name in enumerate(FORECASTERS):
        rows = select(runs, "none", name)
        tables = [pd.read_csv(sweep / run / "forecast.csv") for run in rows["run"]]
        if not tables:
            continue
        both = pd.concat(tables)
        for h, style in ((1, "-"), (2, ":")):
            cell = both[both.horizon == h].groupby("target_period")["test_auroc_true"]
            ax.errorbar(cell.mean().index + 0.05 * (i - 2.5), cell.mean(),
                        yerr=[m - t_interval(m, sd, k)[0] for m, sd, k in zip(cell.mean(), cell.std(), cell.count())],
                        ls=style, marker="o", ms=3, capsize=2, color=f"C{i}", label=f"{name}, {h} ahead")
    ax.set(title="Forecast AUROC against the truth by target period\n(3 seeds, 95% t-intervals)",
           xlabel="target period", ylabel="test AUROC (true outcome)")
    ax.legend(fontsize=7, ncol=2, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    paths = [folder / "forecast_auroc_by_period.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, mode in enumerate(("none", "ipw", "random")):
        rows = select(runs, "none", "mlp", audit="feedback", mode=mode)
        tables = [pd.read_csv(sweep / run / "feedback.csv").set_index("period") for run in rows["run"]]
        if not tables:
            continue
        share = pd.concat([t["attention_share_minority"] for t in tables], axis=1)
        mean, sd, k = share.mean(axis=1), share.std(axis=1), share.count(axis=1)
        ax.errorbar(mean.index + 0.08 * (i - 1), mean, yerr=[m - t_interval(m, s_, n)[0] for m, s_, n in zip(mean, sd, k)],
                    marker="o", capsize=3, color=f"C{i}", label=f"mode={mode}")
    ref = float(runs.loc[runs["cfg.audit.name"] == "feedback", "feedback_true_share_minority"].mean())
    ax.axhline(ref, ls="--", color="grey", lw=1, label="minority share of true positives")
    ax.set(title="Minority attention share per period\n(5 seeds, 95% t-intervals)",
           xlabel="period", ylabel="share of attended nodes in the minority", ylim=(0, 0.7))
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    paths.append(folder / "feedback_minority_attention_by_period.png")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


def main() -> None:
    """Print the tables as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="outputs/temporal")
    parser.add_argument("--figures", default=None, help="folder for the metric-vs-period figures")
    args = parser.parse_args()
    runs = report.load(args.sweep)
    if args.figures:
        for path in per_period_figures(runs, Path(args.sweep), Path(args.figures)):
            print(f"figure: {path}")
    means, pairs = forecaster_tables(runs)
    print("Forecasters, mean over seeds [95% t-interval]:\n")
    print(markdown_table(means, "model"))
    print("\nPaired differences over seeds (* = interval excludes 0):\n")
    print(markdown_table(pairs, "contrast"))
    priv = privacy_table(runs)
    if not priv.empty:
        print("\nContinual-release privacy, test_auroc_true:\n")
        print(markdown_table(priv, "mechanism"))
    per_period, summary = feedback_tables(runs, Path(args.sweep))
    if not per_period.empty:
        print("\nFeedback loop: minority attention share per deployment period, mean over seeds [95% t-interval]:\n")
        print(markdown_table(per_period, "period"))
        print("\nFeedback loop summary and paired mode contrasts:\n")
        print(markdown_table(summary.fillna(""), "mode"))


if __name__ == "__main__":
    main()
