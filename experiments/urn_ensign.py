"""Reproduce Ensign et al.'s Polya-urn experiments (FAT* 2018) on Oakland's top two regions.

Prints, per strategy, region A's final patrol share over the runs against the true rate share, for
the paper's setting (decay 0.01, their `paper-examples` target) and for the urn without decay; the
mean share on a few days (their figures' yellow line); and a three-region check of the two surprise
forms. Saves the share over days (median and 5-95% band) to experiments/urn_figures/ensign_urn.png.

    python experiments/urn_ensign.py [--runs 1000] [--days 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gnnrisk.audit.urn import (
    OAKLAND,
    UrnSetting,
    mixed_fixed_point,
    simulate_urn,
    summarise_urn,
)

STRATEGIES = ("none", "surprise", "mixed", "mixed_surprise")  # surprise_linear equals surprise for 2 regions
DAYS_SHOWN = (0, 100, 250, 500, 1000)
FIGURE = Path(__file__).resolve().parent / "urn_figures" / "ensign_urn.png"


def target(strategy: str, setting: UrnSetting) -> float:
    """Where the strategy's mean dynamics send region A: the truth, or the uncorrected urns' limit."""
    if strategy == "none":
        return 1.0 if setting.rates[0] > setting.rates[1] else 0.0
    if strategy == "mixed":
        return mixed_fixed_point(setting.rates, setting.discovered_weight)
    return setting.rates[0] / sum(setting.rates)


def run_setting(setting: UrnSetting, seed: int) -> tuple[list[list[str]], list[list[str]], dict[str, np.ndarray]]:
    """Summary rows, mean-by-day rows and the (5%, 50%, 95%) band per day of each strategy."""
    rows, by_day, bands = [], [], {}
    for strategy in STRATEGIES:
        shares = simulate_urn(strategy, setting, seed=seed)
        s = summarise_urn(shares, setting.rates)
        rows.append([strategy, f"{s['mean']:.4f} ± {1.96 * s['se']:.4f}", f"{s['q05']:.3f}–{s['q95']:.3f}",
                     f"{s['runaway_any']:.3f}", f"{target(strategy, setting):.4f}", f"{s['true_share']:.4f}"])
        a = shares[:, :, 0]
        # their probplot's mean line bins each share down to a multiple of 0.01 first (about -0.005)
        by_day.append([strategy] + [f"{a[d].mean():.3f} ({(np.floor(a[d] * 100) / 100).mean():.3f})"
                                    for d in DAYS_SHOWN if d <= setting.days])
        bands[strategy] = np.quantile(a, [0.05, 0.5, 0.95], axis=1)
    return rows, by_day, bands


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def three_regions(seed: int) -> list[list[str]]:
    """Rates 3, 2, 1 (not the paper's): final mean shares per strategy against 1/2, 1/3, 1/6."""
    setting = UrnSetting(rates=(3.0, 2.0, 1.0), prior=(20.0, 50.0, 30.0), days=1000, runs=1000, decay=0.01)
    out = []
    for strategy in ("none", "surprise", "surprise_linear"):
        final = simulate_urn(strategy, setting, seed=seed)[-1]
        out.append([strategy] + [f"{m:.3f}" for m in final.mean(axis=0)])
    return out + [["true share", "0.500", "0.333", "0.167"]]


def plot(bands: dict[str, dict[str, np.ndarray]], setting: UrnSetting, path: Path) -> None:
    """Median and 5-95% band of region A's share over days, one panel per strategy and decay."""
    fig, axes = plt.subplots(len(bands), len(STRATEGIES), figsize=(4 * len(STRATEGIES), 3.2 * len(bands)),
                             sharex=True, sharey=True, squeeze=False)
    truth = setting.rates[0] / sum(setting.rates)
    for row, (label, per_strategy) in zip(axes, bands.items()):
        for ax, strategy in zip(row, STRATEGIES):
            lo, med, hi = per_strategy[strategy]
            days = np.arange(len(med))
            ax.fill_between(days, lo, hi, color="0.8", label="5–95% of runs")
            ax.plot(days, med, "k-", label="median")
            ax.axhline(truth, color="g", ls="--", label=f"true share {truth:.3f}")
            if strategy == "mixed":
                ax.axhline(mixed_fixed_point(setting.rates, setting.discovered_weight), color="r", ls=":",
                           label="mixed fixed point")
            ax.set_title(f"{strategy}, {label}", fontsize=10)
            ax.set_ylim(0.3, 1.0)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    for ax in axes[:, 0]:
        ax.set_ylabel("patrol share of region A")
    axes[0, 2].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Ensign et al. urn, Oakland rates {setting.rates}, prior {setting.prior}, {setting.runs} runs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Run both settings, print the tables and save the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    start = time.perf_counter()
    paper = replace(OAKLAND, runs=args.runs, days=args.days)
    header = ["strategy", "mean final share A (95% CI)", "5th–95th pct", "runs > 0.9 to one region",
              "mean-dynamics target", "true share"]
    bands = {}
    for label, setting in (("decay 0.01", paper), ("no decay", replace(paper, decay=0.0))):
        rows, by_day, bands[label] = run_setting(setting, args.seed)
        print(f"\n## Oakland, {label}: rates {setting.rates}, prior {setting.prior}, {setting.days} days, "
              f"{setting.runs} runs, discovered weight {setting.discovered_weight} (mixed), seed {args.seed}\n")
        print(markdown(header, rows))
        print("\nmean share of region A on day (in brackets: binned down to 0.01 as their figures' mean line):\n")
        print(markdown(["strategy"] + [str(d) for d in DAYS_SHOWN if d <= setting.days], by_day))
    print("\n## Three regions (rates 3, 2, 1; prior 20, 50, 30; decay 0.01; 1000 runs): mean final shares\n")
    print(markdown(["strategy", "A", "B", "C"], three_regions(args.seed)))
    plot(bands, paper, args.figure)
    print(f"\nfigure: {args.figure}\nwall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
