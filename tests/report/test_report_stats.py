"""Intervals, paired differences to the non-private run, the few-seeds warning and per-unit Pareto fronts."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gnnrisk.report.aggregate import t_interval
from gnnrisk.report.build import make_report
from gnnrisk.report.plots import pareto_front, pareto_fronts
from gnnrisk.report.tables import budget_text, difference_text, estimate_text
from report_fixtures import JITTER, config, fake_sweep, paired_sweep, write_run

VALUES = [0.61, 0.64, 0.70, 0.66]


def _scipy_interval(values: list[float]) -> tuple[float, float]:
    """scipy's 95% t-interval of the mean of `values` (n-1 degrees of freedom)."""
    return stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))


def _seed_sweep(sweep: Path, values: list[float]) -> None:
    """Non-private runs of one group, one per seed, with the given test_auroc."""
    for seed, value in enumerate(values):
        write_run(sweep, f"seed={seed}", config("none", None, seed),
                  {"test_auroc": value, "epsilon": None, "seed": seed})


def _row(summary: pd.DataFrame, mech: str, model: str | None = None) -> pd.Series:
    """The summary row of one mechanism (and model)."""
    rows = summary[(summary["privacy.name"] == mech) & ((summary["model.name"] == model) if model else True)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_t_interval_equals_scipy():
    """t_interval equals scipy.stats.t.interval on known numbers; undefined for one value."""
    lo, hi = t_interval(np.mean(VALUES), statistics.stdev(VALUES), len(VALUES))
    assert (float(lo), float(hi)) == pytest.approx(_scipy_interval(VALUES), rel=1e-12)
    # by hand: t(0.975, 3) = 3.182446305; mean 0.6525, stdev 0.037749
    assert float(hi) - 0.6525 == pytest.approx(3.182446305 * statistics.stdev(VALUES) / 2, rel=1e-9)
    assert np.isnan(t_interval(0.5, np.nan, 1)).all()


def test_summary_intervals_and_cells(tmp_path: Path):
    """summary.csv holds scipy's interval; summary.md shows `mean ± std [lo, hi]`; the caption names it."""
    _seed_sweep(tmp_path / "s", VALUES)
    make_report(tmp_path / "s", metrics=["test_auroc"])
    row = pd.read_csv(tmp_path / "s" / "report" / "summary.csv").iloc[0]
    lo, hi = _scipy_interval(VALUES)
    assert (row["test_auroc_ci_lo"], row["test_auroc_ci_hi"]) == pytest.approx((lo, hi), rel=1e-12)
    cell = f"{np.mean(VALUES):.3f} ± {statistics.stdev(VALUES):.3f} [{lo:.3f}, {hi:.3f}]"
    assert cell == "0.652 ± 0.038 [0.592, 0.713]"
    assert f"| 4 | {cell} |" in (tmp_path / "s" / "report" / "summary.md").read_text()
    tex = (tmp_path / "s" / "report" / "summary.tex").read_text()
    assert cell in tex and r"95\% Student-t CI" in tex and "unbiased" in tex


def test_one_run_has_no_interval(tmp_path: Path):
    """n = 1: std and interval are NaN; the cell is the mean alone."""
    _seed_sweep(tmp_path / "s", [0.7])
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    assert summary[["test_auroc_std", "test_auroc_ci_lo", "test_auroc_ci_hi"]].isna().all(axis=None)
    assert estimate_text(0.7, math.nan, math.nan, math.nan, 3) == "0.700"


def test_cell_formats():
    """Estimates show the interval; budgets the rounded-up mean (± std only when it varies); differences a star
    exactly when the interval excludes 0."""
    assert estimate_text(0.81249, 0.01, 0.8, 0.825, 3) == "0.812 ± 0.010 [0.800, 0.825]"
    assert budget_text(1.0004, 0.0, 3) == "1.001" and budget_text(2.5, 0.1, 3) == "2.500 ± 0.100"
    assert difference_text(-0.03, -0.034, -0.026, 3) == "-0.030 [-0.034, -0.026]*"
    assert difference_text(0.02, 0.001, 0.039, 3) == "+0.020 [+0.001, +0.039]*"
    assert difference_text(-0.03, -0.2, 0.14, 3) == "-0.030 [-0.200, +0.140]"
    assert difference_text(-0.03, math.nan, math.nan, 3) == "-0.030"
    assert difference_text(math.nan, math.nan, math.nan, 3) == "–"


def test_paired_interval_excludes_zero_where_unpaired_intervals_overlap(tmp_path: Path):
    """Private = none + (-0.03 + small jitter) per seed, seeds far apart: the paired interval excludes 0 and
    equals scipy's on the offsets, while the two groups' own intervals overlap."""
    reference = paired_sweep(tmp_path / "s", {"gcn": -0.03})
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    private, none = _row(summary, "edgerand"), _row(summary, "none")
    assert private["test_auroc_ci_lo"] < none["test_auroc_ci_hi"]            # the unpaired intervals overlap
    assert none["test_auroc_ci_lo"] < private["test_auroc_ci_hi"]
    offsets = [-0.03 + JITTER[s] for s in range(len(reference))]
    lo, hi = _scipy_interval(offsets)
    assert private["test_auroc_diff_mean"] == pytest.approx(statistics.mean(offsets), abs=1e-12)
    assert private["test_auroc_diff_std"] == pytest.approx(statistics.stdev(offsets), rel=1e-9)
    assert private["test_auroc_diff_n"] == 5          # none's epsilon-4 repeats are not paired a second time
    assert (private["test_auroc_diff_ci_lo"], private["test_auroc_diff_ci_hi"]) == pytest.approx((lo, hi), rel=1e-9)
    assert hi < 0
    paired = (tmp_path / "s" / "report" / "paired.md").read_text().splitlines()
    assert paired[0] == "| privacy.name | privacy.epsilon | privacy_unit | n | Δ test_auroc |"
    assert paired[2] == f"| edgerand | 1 | edge | 5 | {statistics.mean(offsets):+.3f} [{lo:+.3f}, {hi:+.3f}]* |"
    assert len(paired) == 3                          # one row per private group, none is not a row
    csv = pd.read_csv(tmp_path / "s" / "report" / "paired.csv")
    assert list(csv["privacy.name"]) == ["edgerand"] and csv.loc[0, "test_auroc_diff_n"] == 5


def test_pairing_matches_model_and_seed(tmp_path: Path):
    """Two models with different offsets: each private group's difference is its own model's offset."""
    paired_sweep(tmp_path / "s", {"gcn": -0.02, "sage": -0.10})
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    for model, offset in (("gcn", -0.02), ("sage", -0.10)):
        row = _row(summary, "edgerand", model)
        assert row["test_auroc_diff_mean"] == pytest.approx(offset + statistics.mean(JITTER), abs=1e-12)
        assert row["test_auroc_diff_std"] == pytest.approx(statistics.stdev(JITTER), rel=1e-9)
        assert row["test_auroc_diff_n"] == 5


def test_reference_rows_and_unpaired_groups_have_no_difference(tmp_path: Path):
    """none rows have NaN differences; a private model without a non-private run has NaN and a note."""
    sweep = tmp_path / "s"
    paired_sweep(sweep, {"gcn": -0.02})
    for seed in range(3):
        write_run(sweep, f"model=gat,privacy=edgerand,privacy.epsilon=1,seed={seed}",
                  config("edgerand", 1.0, seed, "gat"),
                  {"test_auroc": 0.6, "epsilon": 0.999, "privacy_unit": "edge", "seed": seed})
    report = make_report(sweep, metrics=["test_auroc"])
    diff_cols = [f"test_auroc_diff_{s}" for s in ("mean", "std", "n", "ci_lo", "ci_hi")]
    assert report.summary.loc[report.summary["privacy.name"] == "none", diff_cols].isna().all(axis=None)
    assert _row(report.summary, "edgerand", "gat")[diff_cols].isna().all()
    assert _row(report.summary, "edgerand", "gcn")["test_auroc_diff_n"] == 5
    assert any("1 private group(s) have no non-private run" in n for n in report.notes)
    assert "epsilon_diff_mean" not in report.summary        # budgets are not compared
    md = (sweep / "report" / "paired.md").read_text().splitlines()
    assert md[0] == "| model.name | privacy.name | privacy.epsilon | privacy_unit | n | Δ test_auroc |"
    assert md[2] == "| gat | edgerand | 1 | edge | 0 | – |"


def test_no_nonprivate_runs_skips_pairing_with_a_note(tmp_path: Path):
    """A sweep without `none`: a note, no difference columns, no paired files (stale ones removed)."""
    sweep = tmp_path / "s"
    for seed in range(3):
        write_run(sweep, f"seed={seed}", config("edgerand", 1.0, seed),
                  {"test_auroc": 0.6 + seed / 100, "epsilon": 0.999, "privacy_unit": "edge", "seed": seed})
    (sweep / "report").mkdir()
    (sweep / "report" / "paired.md").write_text("stale")
    report = make_report(sweep, metrics=["test_auroc"])
    assert any("no non-private runs" in n for n in report.notes) and not report.problems
    assert not [c for c in report.summary.columns if "_diff_" in c]
    assert not list((sweep / "report").glob("paired.*"))


@pytest.mark.parametrize("n_seeds, warned", [(1, True), (2, True), (3, False)])
def test_few_seeds_warning(tmp_path: Path, n_seeds: int, warned: bool):
    """Fewer than 3 seeds in a group: a note that counts those groups; none at 3 seeds."""
    sweep = tmp_path / "s"
    for model in ("gcn", "mlp"):
        for seed in range(n_seeds if model == "gcn" else 3):
            write_run(sweep, f"model={model},seed={seed}", config("none", None, seed, model),
                      {"test_auroc": 0.6 + seed / 100, "epsilon": None, "seed": seed})
    notes = make_report(sweep, metrics=["test_auroc"]).notes
    expected = "1 group(s) have fewer than 3 seeds: intervals are undefined (n=1) or very wide (n=2)"
    assert (expected in notes) == warned
    assert any("fewer than 3 seeds" in n for n in notes) == warned


def _units_summary() -> pd.DataFrame:
    """Edge and node groups where node points would dominate most edge points on one front, plus a reference."""
    return pd.DataFrame({
        "privacy.name": ["edgerand", "edgerand", "edgerand", "dpsgd_node", "dpsgd_node", "none"],
        "privacy_unit": ["edge", "edge", "edge", "node", "node", None],
        "n_runs": [3] * 6,
        "epsilon_mean": [1.0, 2.0, 4.0, 0.5, 8.0, np.nan],
        "test_auroc_mean": [0.60, 0.70, 0.65, 0.90, 0.95, 0.97],
    })


def test_pareto_fronts_per_unit_never_mix_units():
    """One front per unit, each the front of that unit's points alone; the reference is on none."""
    summary = _units_summary()
    fronts = pareto_fronts(summary, "epsilon", "test_auroc", "min", "max")
    assert set(fronts) == {"edge", "node"}
    for unit, front in fronts.items():
        assert set(summary.loc[front, "privacy_unit"]) == {unit}
        rows = np.flatnonzero(summary["privacy_unit"] == unit)
        x, y = summary["epsilon_mean"].to_numpy()[rows], summary["test_auroc_mean"].to_numpy()[rows]
        alone = rows[pareto_front(x, y)]
        assert sorted(front) == sorted(alone)
    assert list(fronts["edge"]) == [0, 1]             # kept although (0.5, 0.90) of node dominates both
    assert list(fronts["node"]) == [3, 4]
    mixed = pareto_front(summary["epsilon_mean"].to_numpy()[:5], summary["test_auroc_mean"].to_numpy()[:5])
    assert list(np.flatnonzero(mixed)) == [3, 4]      # what one mixed front would have wrongly shown


def test_pareto_single_unit_is_one_front():
    """With one unit (or none) there is a single front over all groups with both values."""
    summary = _units_summary().iloc[:3]
    fronts = pareto_fronts(summary, "epsilon", "test_auroc", "min", "max")
    assert list(fronts) == [None] and list(fronts[None]) == [0, 1]


def test_pareto_plot_of_two_units_is_written(tmp_path: Path):
    """The fake sweep (edge and node mechanisms) still gives one Pareto file, without problems."""
    sweep = tmp_path / "s"
    fake_sweep(sweep, np.random.default_rng(0))
    report = make_report(sweep, metrics=["test_auroc"])
    assert (sweep / "report" / "pareto_epsilon_test_auroc.png").read_bytes()[:4] == b"\x89PNG"
    assert not report.problems


def test_rise_is_paired_with_the_next_lower_epsilon_of_the_same_mechanism(tmp_path: Path):
    """Two mechanisms at eps 1, 2, 8: rise = metric(eps) - metric(next lower eps) of the same mechanism and seed;
    large between-seed spread cancels, so a small steady rise is resolved; the lowest epsilon has none."""
    sweep = tmp_path / "s"
    steps = {"edgerand": {1.0: 0.0, 2.0: 0.01, 8.0: 0.05}, "gap_edp": {1.0: 0.0, 2.0: -0.02, 8.0: 0.0}}
    for seed in range(5):
        base = 0.55 + 0.08 * seed
        write_run(sweep, f"privacy=none,seed={seed}", config("none", None, seed),
                  {"test_auroc": base, "epsilon": None, "privacy_unit": None, "seed": seed})
        for mech, by_eps in steps.items():
            for eps, step in by_eps.items():
                write_run(sweep, f"privacy={mech},privacy.epsilon={eps:g},seed={seed}", config(mech, eps, seed),
                          {"test_auroc": base + step + JITTER[seed] / 10, "epsilon": eps, "privacy_unit": "edge",
                           "seed": seed})
    summary = make_report(sweep, metrics=["test_auroc"]).summary
    rows = summary.set_index(["privacy.name", "privacy.epsilon"])
    assert np.isnan(rows.loc[("edgerand", 1.0), "test_auroc_rise_mean"])
    assert rows.loc[("edgerand", 2.0), "test_auroc_rise_mean"] == pytest.approx(0.01, abs=1e-12)
    assert rows.loc[("edgerand", 8.0), "test_auroc_rise_mean"] == pytest.approx(0.04, abs=1e-12)
    assert rows.loc[("gap_edp", 8.0), "test_auroc_rise_mean"] == pytest.approx(0.02, abs=1e-12)
    assert rows.loc[("edgerand", 2.0), "test_auroc_rise_ci_lo"] > 0          # resolved despite the seed spread
    assert rows.loc[("gap_edp", 2.0), "test_auroc_rise_ci_hi"] < 0
    assert rows.loc[("edgerand", 8.0), "test_auroc_rise_n"] == 5
    paired = (sweep / "report" / "paired.md").read_text()
    assert "test_auroc rise vs next lower ε" in paired
