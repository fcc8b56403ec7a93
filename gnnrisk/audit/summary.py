"""Aggregate audit sweeps over seeds: the feedback-loop trajectories and the privacy-fairness table.

    python -m gnnrisk.audit.summary feedback SWEEP_DIR   # attention share per mode and round
    python -m gnnrisk.audit.summary fairness SWEEP_DIR   # per-group utility per mechanism and epsilon

Spreads are the unbiased (ddof=1) standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from gnnrisk.audit.feedback import PLOT_FILE, TABLE_FILE  # noqa: E402
from gnnrisk.errors import DataError  # noqa: E402
from gnnrisk.results import CONFIG_FILE, METRICS_FILE  # noqa: E402


def _finished_runs(sweep_dir: Path, marker: str) -> list[Path]:
    """Run folders under `sweep_dir` that hold both `marker` and metrics.json (finished runs)."""
    runs = sorted(p.parent for p in sweep_dir.rglob(marker) if (p.parent / METRICS_FILE).exists())
    if not runs:
        raise DataError(f"no finished run with {marker} under {sweep_dir}")
    return runs


def load_feedback(sweep_dir: Path) -> pd.DataFrame:
    """All feedback.csv tables of a sweep, with the seed of each run."""
    frames = []
    for run in _finished_runs(sweep_dir, TABLE_FILE):
        table = pd.read_csv(run / TABLE_FILE)
        metrics = json.loads((run / METRICS_FILE).read_text())
        table["seed"] = metrics["seed"]
        rates = [c for c in table.columns if c.startswith("record_rate_")]
        for col in rates[1:]:  # the record's disparity: each group's recorded rate over the reference group's
            table[col.replace("record_rate_", "record_ratio_")] = table[col] / table[rates[0]]
        for key, value in metrics.items():
            if key.startswith("feedback_true_share_") or key.startswith("feedback_population_share_"):
                table[key.removeprefix("feedback_")] = value
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def summarise_feedback(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every per-round quantity, by mode and round."""
    numeric = table.drop(columns=["seed"]).select_dtypes("number").columns.drop("round")
    agg = table.groupby(["mode", "round"])[list(numeric)].agg(["mean", "std", "count"])
    agg.columns = [f"{col}_{stat}" for col, stat in agg.columns]
    return agg.reset_index()


def plot_feedback_summary(summary: pd.DataFrame, group: str, path: Path) -> Path:
    """Attention share of `group` over rounds, one line per mode, band = +- 1 std over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for mode, rows in summary.groupby("mode"):
        mean, std = rows[f"attention_share_{group}_mean"], rows[f"attention_share_{group}_std"].fillna(0)
        ax.plot(rows["round"], mean, marker="o", label=f"mode={mode}")
        ax.fill_between(rows["round"], mean - std, mean + std, alpha=0.2)
    ax.axhline(summary[f"true_share_{group}_mean"].mean(), ls="--", color="grey",
               label=f"{group}: share of true positives")
    ax.set(xlabel="round", ylabel=f"attention share of {group}", ylim=(0, 1),
           title=f"n={int(summary[f'attention_share_{group}_count'].min())} seeds, mean +- std")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def load_fairness(sweep_dir: Path) -> pd.DataFrame:
    """metrics.json of every finished run, with the target epsilon from its config."""
    rows = []
    for run in _finished_runs(sweep_dir, CONFIG_FILE):
        metrics = json.loads((run / METRICS_FILE).read_text())
        cfg = OmegaConf.load(run / CONFIG_FILE)
        metrics["epsilon_target"] = cfg.privacy.get("epsilon")
        rows.append(metrics)
    return pd.DataFrame(rows)


def summarise_fairness(runs: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """Per model, mechanism and target epsilon: mean and std over seeds of overall and per-group utility vs y_true."""
    runs = runs.copy()
    runs["epsilon_target"] = runs["epsilon_target"].astype(float)
    runs.loc[runs["mechanism"] == "none", "epsilon_target"] = float("inf")  # epsilon is ignored without privacy
    runs["epsilon_target"] = runs["epsilon_target"].fillna(float("inf"))
    runs = runs.drop_duplicates(["model", "mechanism", "epsilon_target", "seed"])
    runs["auroc_gap_true"] = runs[f"auroc_{groups[0]}_true"] - runs[f"auroc_{groups[1]}_true"]
    cols = ["epsilon", "test_auroc_true"] + [f"auroc_{g}_true" for g in groups] + ["auroc_gap_true"] + [
        f"acc_{g}_true" for g in groups] + ["delta_eo_true", "bias_amplification_true", "score_amplification_true"]
    cols = [c for c in cols if c in runs]
    keys = ["model", "mechanism", "epsilon_target"]
    agg = runs.groupby(keys)[cols].agg(["mean", "std"])
    agg[("seeds", "n")] = runs.groupby(keys).size()
    return agg


def main() -> None:
    """Command line: print the summary table and write it (and a figure) into the sweep folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("feedback", "fairness"))
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--group", default="minority", help="group whose attention share is plotted (feedback)")
    args = parser.parse_args()
    pd.set_option("display.width", 200, "display.max_columns", 50)
    if args.kind == "feedback":
        summary = summarise_feedback(load_feedback(args.sweep_dir))
        summary.to_csv(args.sweep_dir / "feedback_summary.csv", index=False)
        plot_feedback_summary(summary, args.group, args.sweep_dir / f"summary_{PLOT_FILE}")
        g = args.group
        cols = ["mode", "round", f"attention_share_{g}_mean", f"attention_share_{g}_std",
                f"record_ratio_{g}_mean", f"record_ratio_{g}_std", f"true_share_{g}_mean", "auroc_true_mean",
                "auroc_true_std"]
        print(summary[cols].round(3).to_string(index=False))
    else:
        runs = load_fairness(args.sweep_dir)
        groups = [k.removeprefix("base_rate_").removesuffix("_true") for k in runs.columns
                  if k.startswith("base_rate_") and k.endswith("_true") and k != "base_rate_gap_true"]
        table = summarise_fairness(runs, groups)
        table.to_csv(args.sweep_dir / "fairness_summary.csv")
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
