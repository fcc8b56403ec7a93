"""The patrol feedback loop on the city (issue 23, part 4): does a forecast-driven patrol over-patrol the minority?

Lum & Isaac (2016): with equal true rates across groups but a record made where patrols go, and patrols
first aimed at the minority's places, a forecaster fitted to the record sends patrols back there and the
loop keeps the minority's patrol share above its share of the true incidents. This script runs
`gnnrisk.audit.city_feedback` with the fast baselines (retro_hotspot, sepp) for every mode on five
cities per setting (city seed = audit seed), 24 periods (4 warm-up periods with the static patrols, then
20 forecast-driven ones), and prints per mode the minority's shares at the end (mean over the last 6
periods), with a mean and 95% t-interval over seeds, and the paired differences from `none`.

Settings: `default` (the city's defaults, periods 24) and `lum_isaac` (flat equal true rates,
hotspot_sd 0; 5x the background rate, so a place sees ~3 incidents a period; patrols aimed harder at the
minority, patrol.group_effect {minority: 4}; a record made mostly by patrols, detection_unpatrolled 0.1).
Then an ablation: `lum_isaac` with one ingredient put back to its default at a time (none vs random);
and one GNN, hetero_sage (30 epochs), on a small lum_isaac city (2000 people, 12 periods), modes none,
random, surprise, oracle (8 forecast-driven periods; "the end" is then periods 6..11).

    python experiments/city_feedback.py [--seeds 5] [--periods 24] [--gnn-seeds 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from gnnrisk.audit import city_feedback as cfb
from gnnrisk.audit.city_feedback_plot import plot_city_feedback
from gnnrisk.data.city import generate_city

MODELS = ("retro_hotspot", "sepp")
LUM_ISAAC = {"crime": {"hotspot_sd": 0.0, "background_rate": 0.1}, "patrol": {"group_effect": {"minority": 4.0}},
             "observation": {"detection_unpatrolled": 0.1}}
SETTINGS = {"default": {}, "lum_isaac": LUM_ISAAC}
ABLATIONS = {  # lum_isaac with one ingredient back at its default
    "hotspots back (hotspot_sd 1)": {**LUM_ISAAC, "crime": {"hotspot_sd": 1.0, "background_rate": 0.1}},
    "rate back (background_rate 0.02)": {**LUM_ISAAC, "crime": {"hotspot_sd": 0.0, "background_rate": 0.02}},
    "patrol bias back (group_effect 1.5)": {**LUM_ISAAC, "patrol": {"group_effect": {"minority": 1.5}}},
    "det_u back (0.3)": {**LUM_ISAAC, "observation": {"detection_unpatrolled": 0.3}},
}
GNN, GNN_MODEL, GNN_TRAIN = "hetero_sage", {"name": "hetero_sage"}, {"epochs": 30, "patience": 10}
GNN_CITY = {**LUM_ISAAC, "num_people": 2000, "periods": 12}  # small: a GNN is trained afresh every period
GNN_MODES = ("none", "random", "surprise", "oracle")  # ipw needs a weighted record, which a GNN cannot read
END = 6  # periods averaged as "the end"
G = "minority"


def run_all(configs: dict[str, dict], modes: tuple[str, ...], models: tuple[str, ...], seeds: int,
            periods: int) -> pd.DataFrame:
    """Every (setting, model, seed, mode) loop's table, stacked."""
    tables = []
    for setting, cfg in configs.items():
        for seed in range(seeds):  # city seed = audit seed
            city = generate_city({"periods": periods, **cfg}, seed)
            for model in models:
                model_cfg, train_cfg = (GNN_MODEL, GNN_TRAIN) if model == GNN else ({}, {})
                for mode in modes:
                    s = cfb.validate_city_feedback({"mode": mode}, city, model)
                    t = cfb.simulate_city_feedback(s, city, model, model_cfg, train_cfg, seed)
                    tables.append(t.assign(setting=setting, model=model, seed=seed))
    return pd.concat(tables, ignore_index=True)


def end_values(table: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, model, mode, seed): the minority's shares, hit rate and overlap over the last END periods."""
    end = table[table["period"] >= table["period"].max() - END + 1]
    cols = [f"patrol_share_{G}", f"recorded_share_{G}", f"true_share_{G}", f"need_share_{G}", "hit_rate", "overlap"]
    out = end.groupby(["setting", "model", "mode", "seed"], sort=False)[cols].mean().reset_index()
    out["gap"] = out[f"patrol_share_{G}"] - out[f"true_share_{G}"]
    return out


def ci(x: np.ndarray) -> str:
    """Mean and 95% t-interval half-width over seeds."""
    x = np.asarray(x, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan
    return f"{x.mean():.3f} ± {half:.3f}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def summary_tables(ends: pd.DataFrame, modes: tuple[str, ...]) -> str:
    """Per setting and model: shares per mode, and each mode's gap minus none's, paired by seed."""
    parts = []
    for (setting, model), block in ends.groupby(["setting", "model"], sort=False):
        rows = []
        base = block[block["mode"] == "none"].set_index("seed")["gap"]
        for mode in modes:
            b = block[block["mode"] == mode].set_index("seed").loc[base.index]
            paired = "—" if mode == "none" else ci((b["gap"] - base).to_numpy())
            rows.append([mode, ci(b[f"patrol_share_{G}"]), ci(b[f"recorded_share_{G}"]), ci(b[f"true_share_{G}"]),
                         ci(b[f"need_share_{G}"]), ci(b["gap"]), paired, ci(b["hit_rate"]), ci(b["overlap"])])
        parts.append(f"\n### {setting}, {model}\n\n" + markdown(
            ["mode", "patrol share", "recorded share", "true share", "need share", "gap = patrol − true",
             "gap − none's gap (paired)", "hit rate", "overlap"], rows))
    return "\n".join(parts)


def plot(per_period: pd.DataFrame, modes: tuple[str, ...], path: Path) -> None:
    """The minority's patrol share over periods (mean over seeds, from the periods CSV) per mode; dashed: true share."""
    keys = list(per_period.groupby(["setting", "model"], sort=False).groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (setting, model) in zip(axes[0], keys):
        block = per_period[(per_period["setting"] == setting) & (per_period["model"] == model)]
        ax.axvspan(-0.5, cfb.DEFAULTS["warmup"] - 0.5, color="0.92", lw=0)
        for i, mode in enumerate(modes):  # one line per mode
            m = block[block["mode"] == mode]
            ax.plot(m["period"], m[f"patrol_share_{G}"], "-", color=colors[i % len(colors)], label=mode)
        truth = block[block["mode"] == "none"]
        ax.plot(truth["period"], truth[f"true_share_{G}"], "k--", lw=1, label="true share")
        ax.set_title(f"{setting}, {model}", fontsize=10)
        ax.set_xlabel("period")
    axes[0, 0].set_ylabel(f"{G} patrol share (mean of seeds)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("grey: warm-up (static patrols)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Run the settings and the ablation, print the tables, save the CSV and the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--periods", type=int, default=24)
    parser.add_argument("--gnn-seeds", type=int, default=5, help="cities for the GNN run (0: skip it)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "city_feedback_figures")
    args = parser.parse_args()
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    table = run_all(SETTINGS, cfb.MODES, MODELS, args.seeds, args.periods)
    cols = [f"patrol_share_{G}", f"recorded_share_{G}", f"true_share_{G}", "hit_rate", "overlap", "gini_recorded"]
    per_period = table.groupby(["setting", "model", "mode", "period"], sort=False)[cols].mean().reset_index()
    per_period.to_csv(args.out / "city_feedback_periods.csv", index=False, float_format="%.4f")
    ends = end_values(table)
    print(f"## Minority at the end (periods {args.periods - END}..{args.periods - 1}), mean ± 95% t-interval "
          f"over {args.seeds} seeds\n{summary_tables(ends, cfb.MODES)}")
    abl = end_values(run_all(ABLATIONS, ("none", "random"), ("retro_hotspot",), args.seeds, args.periods))
    rows = []
    for name, block in abl.groupby("setting", sort=False):
        none, rand = (block[block["mode"] == m].set_index("seed")["gap"] for m in ("none", "random"))
        rows.append([name, ci(none), ci(rand), ci((none - rand.loc[none.index]).to_numpy())])
    print("\n## Ablation of lum_isaac (retro_hotspot): minority gap = patrol − true share at the end\n")
    print(markdown(["lum_isaac with", "none", "random", "none − random (paired)"], rows))
    if args.gnn_seeds:
        gnn = end_values(run_all({"lum_isaac, 2000 people, 12 periods": GNN_CITY}, GNN_MODES, (GNN,),
                                 args.gnn_seeds, 12))
        print(f"\n## A GNN ({GNN}, {GNN_TRAIN}) on a small lum_isaac city, periods 6..11, {args.gnn_seeds} seeds"
              f"\n{summary_tables(gnn, GNN_MODES)}")
    parts = [ends.assign(section="main"), abl.assign(section="ablation")] + ([gnn.assign(section="gnn")]
                                                                             if args.gnn_seeds else [])
    pd.concat(parts).to_csv(args.out / "city_feedback_end.csv", index=False, float_format="%.4f")
    plot(per_period, cfb.MODES, args.out / "city_feedback.png")
    one = table[(table["setting"] == "lum_isaac") & (table["model"] == "retro_hotspot") & (table["seed"] == 0)
                & (table["mode"] == "none")]
    plot_city_feedback(one, ["majority", "minority"], args.out / "city_feedback_lum_isaac_none_seed0.png")
    print(f"\nfiles in {args.out}: city_feedback_end.csv (per seed), city_feedback_periods.csv (mean of seeds), "
          "city_feedback.png, city_feedback_lum_isaac_none_seed0.png")
    print(f"wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
