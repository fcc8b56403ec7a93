"""The report's numbers equal a recomputation from the metrics.json files; its files are well formed."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnrisk.report.build import make_report
from gnnrisk.report.plots import pareto_front
from report_fixtures import fake_sweep


@pytest.fixture()
def sweep(tmp_path: Path) -> tuple[Path, dict]:
    """A fake sweep folder and its metrics by group."""
    return tmp_path / "sweep", fake_sweep(tmp_path / "sweep", np.random.default_rng(0))


def _row(summary: pd.DataFrame, mech: str, eps: float | None) -> pd.Series:
    """The summary row of one group."""
    rows = summary[(summary["privacy.name"] == mech)
                   & (summary["privacy.epsilon"].isna() if eps is None else summary["privacy.epsilon"] == eps)]
    assert len(rows) == 1, (mech, eps, rows)
    return rows.iloc[0]


def test_summary_equals_recomputation_from_metrics_files(sweep):
    """Mean, unbiased std and count of every group match statistics.mean/stdev over the group's runs."""
    sweep_dir, _ = sweep
    report = make_report(sweep_dir, metrics=["test_acc", "test_auroc"])
    summary = pd.read_csv(sweep_dir / "report" / "summary.csv")
    # independent recomputation: read every metrics.json again, group by the folder's overrides
    groups: dict[tuple[str, float | None], dict[int, dict]] = {}
    for path in sorted(sweep_dir.glob("*/metrics.json")):
        over = dict(kv.split("=") for kv in path.parent.name.split(","))
        mech, eps = over["privacy"], float(over["privacy.epsilon"])
        key = (mech, None if mech == "none" else eps)
        groups.setdefault(key, {}).setdefault(int(over["seed"]), json.loads(path.read_text()))
    assert len(summary) == len(groups) == 5
    for (mech, eps), by_seed in groups.items():
        row = _row(summary, mech, eps)
        assert row["n_runs"] == len(by_seed) == 3
        for metric in ("test_acc", "test_auroc", "epsilon"):
            values = [m[metric] for m in by_seed.values() if m[metric] is not None]
            if not values:
                assert math.isnan(row[f"{metric}_mean"]) and row[f"{metric}_count"] == 0
                continue
            assert row[f"{metric}_mean"] == pytest.approx(statistics.mean(values), rel=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
            assert row[f"{metric}_count"] == len(values)
    assert any("repeat another run" in n for n in report.notes)  # the none x epsilon repeats were collapsed


@pytest.mark.slow
def test_groups_keep_only_the_keys_that_name_them(sweep):
    """Mechanism parameters that follow from privacy.name are not group keys; seed never is."""
    sweep_dir, _ = sweep
    summary = make_report(sweep_dir).summary
    keys = list(summary.columns[: list(summary.columns).index("n_runs")])
    assert keys == ["privacy.name", "privacy.epsilon", "privacy_unit"]
    assert list(summary["privacy.name"]) == ["dpsgd_node", "dpsgd_node", "edgerand", "edgerand", "none"]


def test_runs_csv_has_every_run_and_failures_are_listed(sweep):
    """runs.csv holds all 20 run folders (Hydra's .hydra copies ignored); failed.csv the failed and unfinished."""
    sweep_dir, _ = sweep
    make_report(sweep_dir)
    runs = pd.read_csv(sweep_dir / "report" / "runs.csv")
    assert len(runs) == 20
    assert (runs["status"] == "finished").sum() == 18
    failed = pd.read_csv(sweep_dir / "report" / "failed.csv")
    assert set(failed["status"]) == {"failed", "incomplete"}
    assert "expected a finite number > 0" in failed.loc[failed["status"] == "failed", "error"].iloc[0]


def test_markdown_and_latex_tables(sweep):
    """summary.md is a pipe table; summary.tex a booktabs tabular with escaped names and mean ± std cells."""
    sweep_dir, truth = sweep
    make_report(sweep_dir, metrics=["test_acc"])
    md = (sweep_dir / "report" / "summary.md").read_text().splitlines()
    assert md[0].startswith("| privacy.name | privacy.epsilon |") and md[1].startswith("|---")
    table = md[: md.index("")] if "" in md else md
    assert len(table) == 2 + 5 and all(line.startswith("|") for line in table)
    assert (len(md) > len(table)) == any("]†" in line for line in table)  # a footnote only for clipped cells
    tex = (sweep_dir / "report" / "summary.tex").read_text()
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"test\_acc"):
        assert cmd in tex
    accs = [m["test_acc"] for m in truth[("edgerand", 4.0)]]
    assert f"{statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f}" in tex


def test_plots_written_as_png_and_pdf(sweep):
    """One metric-vs-epsilon plot per metric and the Pareto plot, each as PNG and PDF."""
    sweep_dir, _ = sweep
    report = make_report(sweep_dir, metrics=["test_acc", "test_auroc"], pareto_y="test_auroc")
    names = {p.name for p in report.written}
    for stem in ("test_acc_vs_epsilon", "test_auroc_vs_epsilon", "pareto_epsilon_test_auroc"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
        assert (sweep_dir / "report" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (sweep_dir / "report" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    assert not report.problems


def test_pareto_front_matches_brute_force():
    """The vectorised front equals the definition checked pair by pair, for every sense combination."""
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40).astype(float)  # ties on purpose
    for xs, ys in itertools.product(("min", "max"), repeat=2):
        bx, by = (x if xs == "max" else -x), (y if ys == "max" else -y)
        expected = [not any(bx[j] >= bx[i] and by[j] >= by[i] and (bx[j] > bx[i] or by[j] > by[i])
                            for j in range(len(x))) for i in range(len(x))]
        assert pareto_front(x, y, xs, ys).tolist() == expected


def test_pareto_front_small_example():
    """Lower epsilon and higher accuracy are better: (1, .6) and (2, .8) are the front, (2, .7) is dominated."""
    front = pareto_front(np.array([1.0, 2.0, 2.0, 4.0]), np.array([0.6, 0.8, 0.7, 0.8]), "min", "max")
    assert front.tolist() == [True, True, False, False]


def test_which_way_is_better():
    """Budgets, disparities, calibration error, losses and time: lower is better; utility: higher."""
    from gnnrisk.report.plots import sense_of

    for name in ("epsilon", "delta", "delta_eo", "delta_sp_true", "ece", "val_loss", "train_seconds"):
        assert sense_of(name) == "min", name
    for name in ("test_acc", "test_auroc_true", "selection_rate_minority", "test_f1"):
        assert sense_of(name) == "max", name


def test_budgets_are_rounded_up_in_tables():
    """A spent epsilon of 1.0004 shows as 1.001, never 1.000; utility rounds as usual."""
    from gnnrisk.report.tables import mean_std_text

    assert mean_std_text(1.0004, float("nan"), 3, round_up=True) == "1.001"
    assert mean_std_text(0.99992, 0.0, 3, round_up=True) == "1.000 ± 0.000"
    assert mean_std_text(0.81249, 0.01, 3) == "0.812 ± 0.010"
