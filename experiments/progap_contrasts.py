"""Paired contrasts ProGAP − GAP (and against the feature-only references) of the progap grid, seed by seed.

The report pairs every private run with the non-private run of the same model and seed. The
question of experiments/progap.md is ProGAP against GAP at the same privacy level, epsilon and seed
(runs of one seed share the graph and the split), so each contrast is a mean over seeds of per-seed
differences with its 95% Student-t interval (`*` = excludes 0). A second table gives the measured
per-stage view: the validation accuracy and loss of each stage's kept weights (progap_edp:
metrics.json and history.csv; progap_ndp: the run's labelled diagnostics/, computed on private
labels, outside epsilon), and the RMS row norm of each noise-free aggregation (estimated from the released noisy
cache) against the norm of the noise added to a row (std * sqrt(hidden)).

    python experiments/progap_contrasts.py [outputs/progap/report/runs.csv] [--metrics test_acc,test_auroc]
        [--sweep outputs/progap]    # where the run folders are (their diagnostics/); default RUNS/../..
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gnnrisk.report.contrasts import markdown_table, paired_cell, runs_by_seed

EPSILONS = (1.0, 4.0, 8.0, 16.0, math.inf)
EDGE, NODE = (1.0, 4.0, 8.0, math.inf), (4.0, 8.0, 16.0)
# (label, minuend (mechanism, model), subtrahend (mechanism, model, same epsilon?), epsilons)
CONTRASTS = (
    ("ProGAP-EDP − GAP-EDP", ("progap_edp", "gcn"), ("gap_edp", "gcn", True), EDGE),
    ("ProGAP-NDP − GAP-NDP", ("progap_ndp", "gcn"), ("gap_ndp", "gcn", True), NODE),
    ("ProGAP-EDP − MLP (none)", ("progap_edp", "gcn"), ("none", "mlp", False), EDGE),
    ("GAP-EDP − MLP (none)", ("gap_edp", "gcn"), ("none", "mlp", False), EDGE),
    ("ProGAP-NDP − DP-MLP", ("progap_ndp", "gcn"), ("dp_mlp", "mlp", True), NODE),
    ("GAP-NDP − DP-MLP", ("gap_ndp", "gcn"), ("dp_mlp", "mlp", True), NODE),
)


def eps_label(eps: float) -> str:
    """Column name of a target epsilon."""
    return "ε=∞" if math.isinf(eps) else f"ε={eps:g}"


def contrast_table(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per contrast, one column per target epsilon."""
    table = {}
    for label, (mech, model), (ref, ref_model, same_eps), epsilons in CONTRASTS:
        table[label] = {eps_label(eps): paired_cell(runs_by_seed(runs, mech, model, eps)[metric]
                                                    - runs_by_seed(runs, ref, ref_model, eps if same_eps else None)[metric])
                        if eps in epsilons else "" for eps in EPSILONS}
    return pd.DataFrame(table).T


def stage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per ProGAP variant and epsilon: mean stage validation accuracies, aggregation signal and noise norms."""
    out = []
    for mech, epsilons in (("progap_edp", EDGE), ("progap_ndp", NODE)):
        for eps in epsilons:
            rows = runs_by_seed(runs, mech, "gcn", eps)
            if rows.empty:
                continue
            stages = sorted(int(c[5:-8]) for c in rows.columns if c.startswith("stage") and c.endswith("_val_acc")
                            and rows[c].notna().any())
            noise = rows["aggregation_noise_std"] * np.sqrt(rows["cfg.model.hidden_channels"])
            gap = runs_by_seed(runs, mech.replace("progap", "gap"), "gcn", eps)
            out.append({"mechanism": mech, "ε": eps_label(eps),
                        **{f"stage{s} val_acc": f"{rows[f'stage{s}_val_acc'].mean():.3f}" for s in stages},
                        **{f"stage{s} val_loss": f"{rows[f'stage{s}_val_loss'].mean():.3f}" for s in stages
                           if f"stage{s}_val_loss" in rows},
                        "GAP val_acc": f"{gap['val_acc'].mean():.3f}" if not gap.empty else "–",
                        **{f"signal agg{k}": f"{rows[f'aggregation{k}_signal_rms'].mean():.2f}"
                           for k in range(1, 10) if f"aggregation{k}_signal_rms" in rows},
                        "‖noise‖ per row": f"{noise.mean():.2f}"})
    return pd.DataFrame(out)


def stage_losses(history: Path, kept: str) -> dict[str, float]:
    """Validation loss of each stage's kept weights from a run's history.csv: the minimum (`min`, early
    stopping) or the last epoch's (`last`, fixed-epoch DP-SGD)."""
    curve = pd.read_csv(history)
    if "stage" not in curve or "val_loss" not in curve:
        return {}
    by_stage = curve.groupby("stage", sort=False)["val_loss"]
    values = by_stage.min() if kept == "min" else by_stage.last()
    return {f"{stage}_val_loss": float(v) for stage, v in values.items()}


def with_diagnostics(runs: pd.DataFrame, sweep_dir: Path) -> pd.DataFrame:
    """The runs with each run's diagnostics/diagnostics.json values and ProGAP's per-stage validation
    losses (from the history file the run names) as extra columns."""
    extra = []
    for run, mech, history in zip(runs["run"], runs["cfg.privacy.name"], runs.get("history_file", [None] * len(runs))):
        path = sweep_dir / str(run) / "diagnostics" / "diagnostics.json"
        row = json.loads(path.read_text()) if path.exists() else {}
        if str(mech).startswith("progap") and isinstance(history, str) and (sweep_dir / str(run) / history).exists():
            row.update(stage_losses(sweep_dir / str(run) / history, "min" if mech == "progap_edp" else "last"))
        extra.append(row)
    found = pd.DataFrame(extra, index=runs.index)
    return runs.combine_first(found) if not found.empty else runs



def main() -> None:
    """Print, per dataset, the contrasts for each metric and the stage diagnostics as Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", default="outputs/progap/report/runs.csv")
    parser.add_argument("--metrics", default="test_acc,test_auroc")
    parser.add_argument("--sweep", default=None, help="the sweep folder of the runs (default: RUNS/../..)")
    args = parser.parse_args()
    runs = pd.read_csv(args.runs)
    sweep = Path(args.sweep) if args.sweep else Path(args.runs).resolve().parents[1]
    runs = with_diagnostics(runs[runs["status"] == "finished"], sweep)
    for dataset, group in runs.groupby("dataset", sort=False):
        for metric in [m.strip() for m in args.metrics.split(",") if m.strip()]:
            if metric in group and group[metric].notna().any():
                print(f"\n**{dataset}, {metric}**: paired over seeds\n")
                print(markdown_table(contrast_table(group, metric), "contrast"))
        print(f"\n**{dataset}, stage diagnostics** (means over seeds)\n")
        print(markdown_table(stage_table(group).set_index("mechanism"), "mechanism"))


if __name__ == "__main__":
    main()
