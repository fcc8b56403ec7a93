"""Tables and figures of the city study (`experiment=city`), seed by seed, from its run folders.

Parts: forecasts of places and of people against the truth and the record; the patrol feedback loop
(minority patrol share against its true incident share, per mode, paired with mode `none`).

Runs of one seed share the city (people, places, incidents, record), so each contrast is a mean over
seeds of per-seed differences with its 95% Student-t interval (`*` = excludes 0). Two references per
seed are scored here on the same origins: `oracle` ranks by the true expected count of the forecast
period (what no forecaster can know: the ceiling), `random` by a seeded uniform score (the floor).

    python experiments/city_contrasts.py [outputs/city] [--figures experiments/city_figures] [--into experiments/city.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from gnnrisk import report
from gnnrisk.data.city.loader import load_city
from gnnrisk.report.aggregate import t_interval
from gnnrisk.report.contrasts import markdown_table, mean_cell, paired_cell, write_into
from gnnrisk.train.city_forecast import CityForecast
from gnnrisk.train.hotspot_metrics import score_forecast

GNNS = ("hetero_sage", "hetero_gat", "hetero_gcn", "hgt", "rgcn")
RECURRENT = ("gconv_gru", "gconv_lstm", "lstm")
PLACE_MODELS = ("retro_hotspot", "pro_hotspot", "sepp", *GNNS, *RECURRENT)
PERSON_MODELS = ("person_history", "network_exposure", *GNNS, *RECURRENT)
REFERENCES = ("oracle", "random")
METRICS = {"place": ("hit_rate_true_at_5", "pai_true_at_5", "auroc_true", "spearman_true_rate", "hit_rate_recorded_at_5",
                     "auroc_recorded", "flagged_share_minority_at_5"),
           "person": ("hit_rate_true_at_5", "auroc_true", "auprc_true", "spearman_true_rate", "hit_rate_recorded_at_5",
                      "auroc_recorded", "flagged_share_minority_at_5")}
GROUP_KEYS = ("flagged_share_minority_at_5", "true_share_minority", "recorded_share_minority",
              "flag_disparity_minority_at_5")
BASELINE = {"place": ("sepp", "retro_hotspot"), "person": ("network_exposure", "person_history")}
MISLEAD = (("hit_rate_recorded_at_5", "hit_rate_true_at_5"), ("auroc_recorded", "auroc_true"))


def target_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's target (place unless `eval.target` was set)."""
    col = runs["cfg.eval.target"] if "cfg.eval.target" in runs else pd.Series("place", index=runs.index)
    return col.fillna("place")


def audit_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's part of the study: its audit (feedback), `explain` for explanation runs, else none (forecasts)."""
    col = runs["cfg.audit.name"] if "cfg.audit.name" in runs else pd.Series("none", index=runs.index)
    explain = runs["cfg.explain.name"] if "cfg.explain.name" in runs else pd.Series("none", index=runs.index)
    return col.fillna("none").where(explain.fillna("none") == "none", "explain")


def select(runs: pd.DataFrame, model: str, target: str) -> pd.DataFrame:
    """Finished forecasting runs (no audit) of one model and target, one per seed, indexed by seed."""
    rows = runs[(runs["status"] == "finished") & (runs["cfg.model.name"] == model) & (target_of(runs) == target)
                & (audit_of(runs) == "none")]
    return rows.drop_duplicates("cfg.seed").set_index("cfg.seed")


FEEDBACK_MODES = ("none", "random", "explore", "ipw", "surprise", "oracle")
FEEDBACK_MODELS = ("retro_hotspot", "sepp")
CITIES = ("synthetic_city", "lum_isaac_city")


def select_feedback(runs: pd.DataFrame, city: str, model: str, mode: str) -> pd.DataFrame:
    """Finished feedback runs of one city (its data member, named in the run folder), model and mode, by seed."""
    if "cfg.audit.mode" not in runs:
        return runs.iloc[:0].set_index("cfg.seed")
    rows = runs[(runs["status"] == "finished") & (audit_of(runs) == "feedback") & (runs["cfg.model.name"] == model)
                & (runs["cfg.audit.mode"] == mode) & runs["run"].str.contains(f"data={city}(?:,|$)", regex=True)]
    return rows.drop_duplicates("cfg.seed").set_index("cfg.seed")


def feedback_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per city, forecaster and mode: the minority's patrol, recorded and true shares over the loop, the gap, and
    the gap's paired difference from mode none."""
    out = {}
    gap = "feedback_patrol_disparity_minority_mean"
    for city in CITIES:
        for model in FEEDBACK_MODELS:
            base = select_feedback(runs, city, model, "none")
            for mode in FEEDBACK_MODES:
                rows = select_feedback(runs, city, model, mode)
                if rows.empty:
                    continue
                out[f"{city}, {model}, {mode}"] = {
                    "patrol share": mean_cell(rows["feedback_patrol_share_minority_mean"]),
                    "recorded share": mean_cell(rows["feedback_recorded_share_minority_mean"]),
                    "true share": mean_cell(rows["feedback_true_share_minority_mean"]),
                    "gap (patrol − true)": mean_cell(rows[gap]),
                    "gap − gap of none": "" if mode == "none" else paired_cell(rows[gap] - base[gap]),
                    "hit rate (truth)": mean_cell(rows["feedback_hit_rate_mean"]),
                    "overlap": mean_cell(rows["feedback_overlap_mean"]),
                }
    return pd.DataFrame(out).T


EXPLAIN_MODELS = ("hetero_sage", "hetero_gat")
EXPLAIN_ALGORITHMS = ("saliency", "integrated_gradients", "gnnexplainer")
RELATIONS = ("occurred_at", "rev_occurred_at", "adjacent")


def explain_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model and explainer: explanation AUROC overall and per relation, the random and hop masks', the paired
    differences, and the deletion fidelities."""
    out = {}
    done = runs[(runs["status"] == "finished") & (audit_of(runs) == "explain")]
    for model in EXPLAIN_MODELS:
        for algorithm in EXPLAIN_ALGORITHMS:
            rows = done[(done["cfg.model.name"] == model) & (done["cfg.explain.name"] == algorithm)]
            rows = rows.drop_duplicates("cfg.seed").set_index("cfg.seed")
            if rows.empty:
                continue
            cells = {"nodes": f"{int(rows['explain_num_nodes'].sum())} over {len(rows)} seeds",
                     "AUROC": mean_cell(rows["explain_auroc"]),
                     "− random mask": paired_cell(rows["explain_auroc"] - rows["explain_random_auroc"]),
                     "− hop mask": paired_cell(rows["explain_auroc"] - rows["explain_hop_auroc"])}
            for rel in RELATIONS:
                key = f"explain_auroc_{rel}"
                if key in rows:
                    cells[f"AUROC {rel} (− hop)"] = (mean_cell(rows[key]).split(" (")[0] + " ("
                                                     + paired_cell(rows[key] - rows[f"explain_hop_auroc_{rel}"]) + ")")
            cells["fid+ top k / random k / true"] = " / ".join(
                f"{pd.to_numeric(rows[k], errors='coerce').mean():.3f}"
                for k in ("explain_fidelity_plus", "explain_fidelity_plus_random", "explain_fidelity_true"))
            out[f"{model}, {algorithm}"] = cells
    return pd.DataFrame(out).T


def rescore(runs: pd.DataFrame, sweep: Path) -> pd.DataFrame:
    """Every forecasting run scored again from its forecast.csv, and the oracle and random references, per seed.

    Scoring the saved forecasts with the current `score_forecast` on the seed's regenerated city keeps every
    metric (the per-group shares included) on one definition whichever version wrote metrics.json.
    """
    rows = []
    done = runs[(runs["status"] == "finished") & (audit_of(runs) == "none")]  # the forecasting part's cities
    for seed, group in done.groupby("cfg.seed"):  # one city per seed
        cfg = OmegaConf.load(sweep / group.iloc[0]["run"] / "config.yaml")
        city = load_city(cfg.data, int(seed))
        for _, run in group.iterrows():  # the seed's runs
            target = target_of(pd.DataFrame([run])).iloc[0]
            table = pd.read_csv(sweep / run["run"] / "forecast.csv").sort_values(["origin", target])
            origins = sorted(table["origin"].unique().tolist())
            scores = torch.tensor(table["score"].to_numpy()).reshape(len(origins), -1)
            out = score_forecast(CityForecast(scores, origins, run["cfg.model.name"], target), city)
            rows.append({**run.to_dict(), **out})
        for target in sorted(set(target_of(group))):
            first = group[target_of(group) == target].iloc[0]
            origins = sorted(pd.read_csv(sweep / first["run"] / "forecast.csv")["origin"].unique().tolist())
            nxt = torch.tensor([t + 1 for t in origins])
            units = city[target].num_nodes
            oracle = city[target].rate[:, nxt].T
            noise = torch.rand(len(origins), units, generator=torch.Generator().manual_seed(int(seed)))
            for name, scores in (("oracle", oracle), ("random", noise)):
                out = score_forecast(CityForecast(scores, origins, name, target), city)
                rows.append({"run": "", "status": "finished", "cfg.seed": seed, "cfg.model.name": name,
                             "cfg.eval.target": target, "cfg.audit.name": "none", **out})
    return pd.DataFrame(rows)




def tables(runs: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Means per forecaster; paired contrasts (each GNN against the baselines); record minus truth per forecaster."""
    models = (*(PLACE_MODELS if target == "place" else PERSON_MODELS), *REFERENCES)
    metrics = METRICS[target]
    means = pd.DataFrame({m: {name: mean_cell(select(runs, name, target)[m]) for name in models} for m in metrics})
    first, second = BASELINE[target]
    pairs = ([(g, b) for g in (*GNNS, *RECURRENT) for b in (first, second)]
             + [("gconv_gru", "lstm"), ("gconv_lstm", "lstm"), (first, second), ("oracle", first)])
    contrasts = pd.DataFrame({m: {f"{a} − {b}": paired_cell(select(runs, a, target)[m] - select(runs, b, target)[m])
                                  for a, b in pairs} for m in metrics[:4]})
    mislead = pd.DataFrame({f"{a} − {b}": {name: paired_cell(select(runs, name, target)[a]
                                                            - select(runs, name, target)[b]) for name in models}
                            for a, b in MISLEAD})
    for key in GROUP_KEYS:  # the record's bias: who is flagged against who is involved
        mislead[key] = {name: mean_cell(select(runs, name, target)[key]) for name in models}
    return means, contrasts, mislead


def figure(runs: pd.DataFrame, folder: Path) -> Path:
    """Hit rate at 5% and AUROC against the truth per forecaster, places and people, with 95% t-intervals."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharey="col")
    for row, target in enumerate(("place", "person")):
        models = (*(PLACE_MODELS if target == "place" else PERSON_MODELS), *REFERENCES)
        for col, metric in enumerate(("hit_rate_true_at_5", "auroc_true")):
            ax = axes[row, col]
            for i, name in enumerate(models):
                v = pd.to_numeric(select(runs, name, target)[metric], errors="coerce").dropna()
                if v.empty:
                    continue
                lo, hi = t_interval(v.mean(), v.std(ddof=1), len(v)) if len(v) > 1 else (v.mean(), v.mean())
                color = "grey" if name in REFERENCES else ("C0" if name in GNNS else ("C2" if name in RECURRENT
                                                                                        else "C1"))
                ax.errorbar(i, v.mean(), yerr=[[v.mean() - lo], [hi - v.mean()]], fmt="o", color=color, capsize=3)
            ax.set_xticks(range(len(models)), models, rotation=40, ha="right", fontsize=8)
            ax.set_title(f"{target}s: {metric}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle("City forecasts against the truth (5 seeds, 95% t-intervals; orange: analysts' baselines, "
                 "blue: heterogeneous GNNs, green: recurrent, grey: references)", fontsize=10)
    fig.tight_layout()
    path = folder / "city_forecasts.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def study_tables(runs: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Every table of the study as Markdown, by region key: (title, table)."""
    out: dict[str, tuple[str, str]] = {}
    for target in ("place", "person"):
        means, contrasts, mislead = tables(runs, target)
        out[f"{target}_means"] = (f"{target}s: mean over seeds [95% t-interval]", markdown_table(means, "forecaster"))
        out[f"{target}_contrasts"] = (f"{target}s: paired differences over seeds (* = interval excludes 0)",
                                      markdown_table(contrasts, "contrast"))
        out[f"{target}_mislead"] = (f"{target}s: how far the record misleads: metric against the record minus against "
                                    "the truth; the minority's share of the flagged 5% against its share of next "
                                    "period's incidents", markdown_table(mislead, "forecaster"))
    explained = explain_table(runs)
    if not explained.empty:
        out["explain"] = ("explanations of place forecasts on typed links (hot city, latest origin): AUROC against "
                          "the planted triggering links, mean [95% t-interval]; paired differences (* = excludes 0)",
                          markdown_table(explained, "model, explainer"))
    feedback = feedback_table(runs)
    if not feedback.empty:
        out["feedback"] = ("the patrol feedback loop: the minority's shares, mean over the loop's periods [95% "
                           "t-interval]; paired differences (* = interval excludes 0)",
                           markdown_table(feedback, "city, forecaster, mode"))
    return out


def main() -> None:
    """Print the tables as Markdown (and write the figure and the per-run CSV with the references)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="outputs/city")
    parser.add_argument("--figures", default=None, help="folder for the figure and runs.csv")
    parser.add_argument("--into", default=None, help="a page whose <!-- city:KEY:begin/end --> regions get the tables")
    args = parser.parse_args()
    sweep = Path(args.sweep)
    runs = report.load(sweep)
    forecasts = audit_of(runs) == "none"
    runs = pd.concat([runs[~forecasts], rescore(runs, sweep)], ignore_index=True)
    if args.figures:
        folder = Path(args.figures)
        print(f"figure: {figure(runs, folder)}")
        keep = ["cfg.seed", "cfg.model.name", "cfg.eval.target", "train_seconds",
                *sorted({m for ms in METRICS.values() for m in ms}), "auprc_recorded"]
        runs[[c for c in keep if c in runs]].to_csv(folder / "runs.csv", index=False)
    sections = study_tables(runs)
    for key, (title, table) in sections.items():
        print(f"\n## {title}\n\n{table}")
    if args.into:
        write_into(Path(args.into), {key: table for key, (_, table) in sections.items()}, "city")
    forecasts = runs[(runs["run"] != "") & (audit_of(runs) == "none")]
    seconds = forecasts.groupby([target_of(forecasts), "cfg.model.name"])["train_seconds"].median()
    print("\n## median training seconds per run\n")
    print(seconds.round(1).to_string())


if __name__ == "__main__":
    main()
