"""Tables and the figure of the city privacy study (`experiment=city_privacy`), seed by seed, from its run folders.

Arms: the relation-blind maps (retro_hotspot, sepp), the non-private heterogeneous GNN (hetero_sage), and
each private arm (mechanism, unit, target epsilon). Runs of one seed share the city, so each contrast is a
mean over seeds of per-seed differences with its 95% Student-t interval (`*` = excludes 0): every private
arm against the non-private GNN (the cost of privacy) and against the best relation-blind map (whether the
private GNN is still worth its relations).

    python experiments/city_privacy_contrasts.py [outputs/city_privacy] [--figures DIR] [--into PAGE]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gnnrisk import report
from gnnrisk.report.contrasts import markdown_table, mean_cell, paired_cell, write_into

METRICS = ("auroc_true", "hit_rate_true_at_5", "flagged_share_minority_at_5")
BLIND = ("retro_hotspot", "sepp")
FEEDBACK_KEYS = ("feedback_patrol_share_minority_mean", "feedback_true_share_minority_mean", "auroc_true")


def _col(runs: pd.DataFrame, key: str, default: object) -> pd.Series:
    """A config column, `default` where it is absent or missing."""
    return runs[key].fillna(default) if key in runs else pd.Series(default, index=runs.index)


def arms(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs with their part (place, person, feedback) and arm label."""
    runs = runs[runs["status"] == "finished"].copy()
    runs["target"] = _col(runs, "cfg.eval.target", "place")
    runs["part"] = np.where(_col(runs, "cfg.audit.name", "none") == "feedback", "feedback", runs["target"])
    mech = _col(runs, "cfg.privacy.name", "none")
    eps = pd.to_numeric(_col(runs, "cfg.privacy.epsilon", np.nan).replace({".inf": np.inf, "inf": np.inf}),
                        errors="coerce")
    unit = _col(runs, "privacy_unit", "")
    runs["mechanism"], runs["unit"], runs["target_epsilon"] = mech, unit, eps
    label = runs["cfg.model.name"].where(mech == "none", mech + " " + unit.astype(str) + " eps="
                                         + eps.map(lambda e: "inf" if math.isinf(e) else f"{e:g}"))
    runs["arm"] = label
    return runs


def by_seed(runs: pd.DataFrame, part: str, arm: str) -> pd.DataFrame:
    """One arm's runs of one part, one per seed, indexed by seed."""
    rows = runs[(runs["part"] == part) & (runs["arm"] == arm)]
    return rows.drop_duplicates("cfg.seed").set_index("cfg.seed")


def order(runs: pd.DataFrame, part: str) -> list[str]:
    """The part's arms: references first, then by mechanism, unit and epsilon."""
    rows = runs[runs["part"] == part].drop_duplicates("arm")
    refs = rows[rows["mechanism"] == "none"]["arm"].tolist()
    private = rows[rows["mechanism"] != "none"].sort_values(["mechanism", "unit", "target_epsilon"])["arm"].tolist()
    return refs + private


def part_tables(runs: pd.DataFrame, part: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means per arm, and each private arm's paired differences with the non-private run of its model (hetero_gap:
    hetero_sage, the GNN it replaces) and with the best relation-blind map."""
    names = order(runs, part)
    means = pd.DataFrame({m: [mean_cell(by_seed(runs, part, a)[m]) if m in runs else "–" for a in names]
                          for m in METRICS}, index=names)
    blind = [b for b in BLIND if b in names]
    best = max(blind, key=lambda b: by_seed(runs, part, b)["auroc_true"].mean()) if blind else None
    rows = {}
    for arm in names:
        first = runs[(runs["part"] == part) & (runs["arm"] == arm)].iloc[0]
        if first["mechanism"] == "none":
            continue
        mine, reference = by_seed(runs, part, arm), first["cfg.model.name"]
        ref = by_seed(runs, part, reference)
        row = {"non-private reference": reference,
               **{f"{m} − reference": paired_cell(mine[m] - ref[m]) for m in METRICS[:2]}}
        if best is not None:
            row[f"auroc_true − {best}"] = paired_cell(mine["auroc_true"] - by_seed(runs, part, best)["auroc_true"])
        row["spent epsilon"] = mean_cell(mine["epsilon"]) if mine["epsilon"].notna().any() else "– (no noise)"
        rows[arm] = row
    return means, pd.DataFrame(rows).T


def feedback_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The loop: the minority's patrol and true shares over the loop per arm; paired with the non-private loop."""
    names = order(runs, "feedback")
    if not names:
        return pd.DataFrame()
    ref = by_seed(runs, "feedback", names[0])
    out = {}
    for arm in names:
        mine = by_seed(runs, "feedback", arm)
        out[arm] = {**{k: mean_cell(mine[k]) for k in FEEDBACK_KEYS if k in mine},
                    "patrol share − non-private": "–" if arm == names[0] else paired_cell(
                        mine[FEEDBACK_KEYS[0]] - ref[FEEDBACK_KEYS[0]])}
    return pd.DataFrame(out).T


def figure(runs: pd.DataFrame, folder: Path) -> Path:
    """AUROC against the truth over target epsilon per private arm (places), references as lines."""
    folder.mkdir(parents=True, exist_ok=True)
    place = runs[runs["part"] == "place"]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    private = place[place["mechanism"] != "none"]
    finite = private["target_epsilon"].replace(np.inf, np.nan).dropna()
    top = float(finite.max()) * 2 if len(finite) else 32.0
    for (mech, unit), rows in private.groupby(["mechanism", "unit"]):
        eps = rows["target_epsilon"].replace(np.inf, top)
        stats = rows.assign(eps=eps).groupby("eps")["auroc_true"].agg(["mean", "std", "count"])
        half = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
        ax.errorbar(stats.index, stats["mean"], yerr=half, marker="o", capsize=3, label=f"{mech} {unit}")
    for i, ref in enumerate(("hetero_sage", *BLIND)):
        rows = place[place["arm"] == ref]
        if len(rows):
            ax.axhline(rows["auroc_true"].mean(), ls="--", color=f"C{7 + i % 3}", label=f"{ref} (no privacy)")
    ax.set_xscale("log")
    ticks = sorted(set(finite.tolist()) | ({top} if (private["target_epsilon"] == np.inf).any() else set()))
    ax.set_xticks(ticks, [("no noise" if t == top else f"{t:g}") for t in ticks])
    ax.set_xlabel("target epsilon (at each arm's unit)")
    ax.set_ylabel("AUROC of next-period places (truth)")
    ax.set_title(f"Privacy in the city: place forecasts, mean and 95% interval over "
                 f"{place['cfg.seed'].nunique()} seeds", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    path = folder / "city_privacy.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def study_tables(runs: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Every table of the study as Markdown, by region key: (title, table)."""
    out = {}
    for part in ("place", "person"):
        means, contrasts = part_tables(runs, part)
        out[f"{part}_means"] = (f"{part}s: mean over seeds [95% t-interval]", markdown_table(means, "arm"))
        out[f"{part}_contrasts"] = (f"{part}s: paired differences over seeds (* = interval excludes 0)",
                                    markdown_table(contrasts, "arm"))
    loop = feedback_table(runs)
    if not loop.empty:
        title = ("the patrol loop (Lum & Isaac's city): the minority's shares over the loop, mean [95% t-interval]; "
                 "paired difference with the non-private loop")
        out["feedback"] = (title, markdown_table(loop, "arm"))
    return out


def main() -> None:
    """Print the tables as Markdown; write the figure; fill a page's marked regions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="outputs/city_privacy")
    parser.add_argument("--figures", default=None, help="folder for the figure and runs.csv")
    parser.add_argument("--into", default=None, help="a page whose <!-- city_privacy:KEY:begin/end --> regions "
                        "get the tables")
    args = parser.parse_args()
    runs = arms(report.load(Path(args.sweep)))
    if args.figures:
        print(f"figure: {figure(runs, Path(args.figures))}")
        keep = ["cfg.seed", "part", "arm", "epsilon", "train_seconds", *METRICS, *FEEDBACK_KEYS[:2]]
        runs[[c for c in dict.fromkeys(keep) if c in runs]].to_csv(Path(args.figures) / "runs.csv", index=False)
    sections = study_tables(runs)
    for title, table in sections.values():
        print(f"\n## {title}\n\n{table}")
    if args.into:
        write_into(Path(args.into), {key: table for key, (_, table) in sections.items()}, "city_privacy")
    print("\n## median training seconds per run\n")
    print(runs.groupby(["part", "arm"])["train_seconds"].median().round(1).to_string())


if __name__ == "__main__":
    main()
