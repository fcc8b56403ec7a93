"""Explanations on the city's typed links against the planted triggers: AUROC per relation, vs a random mask.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/city_explain.py [--seeds 0 1 2 3 4] [--origin 9]
        [--models hetero_sage hetero_gat] [--targets place person]
        [--algorithms gnnexplainer saliency integrated_gradients] [--train-epochs 20] [--city default|hot]
        [--num-nodes N]

One city per seed (`generate_city(None, seed)`, or with --city hot branching ratios 0.4 + 0.3 and a
30-day mean delay, so that many more incidents trigger one in the next period); per target,
model and seed one GNN trained at the origin (`fit_for_explanation`, model settings at their
defaults), explained for every eligible node (at most --num-nodes, a seeded sample) by each
algorithm (`explain_fitted`). Writes runs.csv (one row per seed x target x model x
algorithm: every `explain_*` metric, or the reason it was skipped), summary.csv (per relation: mean
AUROC, the random- and hop-mask AUROCs and the paired differences over seeds with 95% t-intervals)
and auroc.png into --out.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy import stats

from gnnrisk.data.city import generate_city
from gnnrisk.explain.city import NothingToExplain, explain_fitted, fit_for_explanation
from gnnrisk.explain.city_truth import TRUTH_RELATIONS

HOT = {"crime": {"near_repeat": 0.4, "social": 0.3, "mean_delay_days": 30}}  # stronger, slower self-excitation


def t_interval(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of the non-missing values, and their count."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half), int(v.size)


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, algorithm, relation): AUROC, random AUROC and their paired difference over seeds."""
    rows = []
    done = runs[runs["skipped"].isna()]
    for (target, model, algorithm), group in done.groupby(["target", "model", "algorithm"], sort=False):
        for rel in ("all", *TRUTH_RELATIONS[target]):
            suffix = "" if rel == "all" else f"_{rel}"
            key, rnd, hop = (f"explain_{base}auroc{suffix}" for base in ("", "random_", "hop_"))
            if key not in group:
                continue
            row = {"target": target, "model": model, "algorithm": algorithm, "relation": rel,
                   "nodes": int(group["explain_num_nodes"].sum())}
            for name, series in (("auroc", group[key]), ("random", group[rnd]), ("hop", group[hop]),
                                 ("diff", group[key] - group[rnd]), ("diff_hop", group[key] - group[hop])):
                row[name], row[f"{name}_lo"], row[f"{name}_hi"], row["seeds"] = t_interval(series)
            rows.append(row)
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, path: Path) -> None:
    """AUROC per relation with 95% t-intervals, the random mask beside it, one panel per target."""
    targets = list(dict.fromkeys(table["target"]))
    fig, axes = plt.subplots(len(targets), 1, figsize=(12, 4.5 * len(targets)), squeeze=False)
    for ax, target in zip(axes[:, 0], targets):
        part = table[table["target"] == target].reset_index(drop=True)
        x = np.arange(len(part))
        for shift, col, label in ((-0.25, "auroc", "explainer"), (0, "random", "random mask"),
                                  (0.25, "hop", "hop mask (edges into the node first)")):
            err = np.abs(part[[f"{col}_lo", f"{col}_hi"]].to_numpy().T - part[col].to_numpy())
            ax.errorbar(x + shift, part[col], yerr=np.nan_to_num(err), fmt="o", capsize=3, label=label)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xticks(x, [f"{m.replace('hetero_', '')}/{a[:4]}/{r}" for m, a, r in
                          zip(part["model"], part["algorithm"], part["relation"])], rotation=90, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("explanation AUROC (mean over seeds)")
        ax.set_title(f"target = {target}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    """Train, explain and score every combination; write the CSVs and the figure; print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--origin", type=int, default=9)
    parser.add_argument("--models", nargs="+", default=["hetero_sage", "hetero_gat", "hetero_gcn"])
    parser.add_argument("--targets", nargs="+", default=["place", "person"])
    parser.add_argument("--algorithms", nargs="+", default=["gnnexplainer", "saliency", "integrated_gradients"])
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=100, help="GNNExplainer epochs")
    parser.add_argument("--n-steps", type=int, default=20, help="integrated-gradients steps")
    parser.add_argument("--city", choices=["default", "hot"], default="default")
    parser.add_argument("--num-nodes", type=int, default=None, help="at most this many nodes per seed and target")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "city_explain_figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, runs = time.perf_counter(), []
    train_cfg = {"epochs": args.train_epochs}
    for seed in args.seeds:  # cities
        data = generate_city(None if args.city == "default" else HOT, seed)
        for target in args.targets:
            for model in args.models:
                base = {"seed": seed, "target": target, "model": model}
                try:
                    fitted = fit_for_explanation(data, model, {}, train_cfg, args.origin, seed, target,
                                                 num_nodes=args.num_nodes)  # at most that many eligible nodes
                except NothingToExplain as err:  # no eligible node in this city at this origin
                    runs += [{**base, "algorithm": a, "skipped": str(err)} for a in args.algorithms]
                    print(f"seed {seed} {target} {model}: skipped ({err})", flush=True)
                    continue
                for algorithm in args.algorithms:
                    metrics, _ = explain_fitted(fitted, algorithm, seed, args.epochs, args.n_steps)
                    runs.append({**base, "algorithm": algorithm, **metrics})
                    print(f"seed {seed} {target} {model} {algorithm}: {fitted.nodes.numel()} nodes, AUROC "
                          f"{metrics['explain_auroc']:.3f} (random {metrics['explain_random_auroc']:.3f}), "
                          f"{metrics['explain_seconds']:.1f} s", flush=True)
    runs = pd.DataFrame(runs)
    if "skipped" not in runs:
        runs["skipped"] = np.nan
    table = summary(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "" if args.city == "default" else f"_{args.city}"
    runs.to_csv(args.out / f"runs{tag}.csv", index=False)
    table.to_csv(args.out / f"summary{tag}.csv", index=False)
    plot(table, args.out / f"auroc{tag}.png")
    print(f"\n{platform.node()}, torch {torch.__version__}, 1 thread; city {args.city}, origin {args.origin}, seeds "
          f"{args.seeds}, train epochs {args.train_epochs}, GNNExplainer epochs {args.epochs}, IG steps {args.n_steps}; "
          f"{time.perf_counter() - start:.0f} s\n")
    print("| target | model | algorithm | relation | nodes | seeds | AUROC [95% CI] | random | explainer - random "
          "[95% CI] | hop | explainer - hop [95% CI] |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.target} | {r.model} | {r.algorithm} | {r.relation} | {r.nodes} | {r.seeds} | {r.auroc:.2f} "
              f"[{r.auroc_lo:.2f}, {r.auroc_hi:.2f}] | {r.random:.2f} | {r.diff:+.2f} [{r.diff_lo:+.2f}, "
              f"{r.diff_hi:+.2f}] | {r.hop:.2f} | {r.diff_hop:+.2f} [{r.diff_hop_lo:+.2f}, {r.diff_hop_hi:+.2f}] |")
    cols = ["explain_fidelity_plus", "explain_fidelity_plus_random", "explain_fidelity_true", "explain_precision_at_k",
            "explain_random_precision_at_k", "explain_hop_precision_at_k", "explain_seconds", "explain_fit_seconds"]
    fid = runs[runs["skipped"].isna()].groupby(["target", "model", "algorithm"], sort=False)[cols].mean()
    print("\nmeans over seeds: fid+ = |change of the log forecast| when the top-k / k random / the true edges are "
          "deleted; precision@k of the explainer, random and hop masks; seconds to explain and to fit\n")
    print("| target | model | algorithm | fid+ top-k | fid+ random | fid true | P@k | P@k random | P@k hop | s | fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (target, model, algorithm), r in fid.iterrows():
        print(f"| {target} | {model} | {algorithm} | " + " | ".join(f"{v:.4f}" for v in r.iloc[:3]) + " | "
              + " | ".join(f"{v:.3f}" for v in r.iloc[3:6]) + " | " + " | ".join(f"{v:.1f}" for v in r.iloc[6:]) + " |")


if __name__ == "__main__":
    main()
