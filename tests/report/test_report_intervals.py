"""Intervals fit for a paper: clipped to the metric's range and marked; plots that say when n < 3 seeds; warnings
that stay quiet for the normal private + non-private mix and print as one line; Pareto titles that do not overlap."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from gnnrisk.report.build import make_report
from gnnrisk.report.cli import EXIT_OK, main
from gnnrisk.report.collect import ReportWarning
from gnnrisk.report.plots import metric_by_keys_figure, metric_vs_x_figure, pareto_figure
from gnnrisk.report.ranges import CLIP_MARK, CLIPPED_NOTE, metric_range
from gnnrisk.report.tables import display_table, footnotes, to_markdown
from report_fixtures import config, fake_sweep, write_run


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures built by the tests are closed after each one."""
    yield
    plt.close("all")


def _two_seed_sweep(sweep: Path) -> None:
    """none and edgerand at epsilon 1, two seeds each, AUROCs far apart: t-intervals (t = 12.7) leave [0, 1]."""
    for seed, (ref, private) in enumerate(((0.45, 0.50), (0.75, 0.70))):
        write_run(sweep, f"privacy=none,seed={seed}", config("none", None, seed),
                  {"test_auroc": ref, "epsilon": None, "privacy_unit": None, "seed": seed})
        write_run(sweep, f"privacy=edgerand,seed={seed}", config("edgerand", 1.0, seed),
                  {"test_auroc": private, "epsilon": 0.999, "privacy_unit": "edge", "seed": seed,
                   "flip_prob": 0.27, "noise_multiplier": 1.0})  # fields only private runs report


def test_metric_ranges():
    """Shares and scores are in [0, 1]; differences, gains, budgets and noisy counts have no range."""
    for name in ("test_acc", "test_auroc_true", "val_auprc", "tpr_minority_true", "attack_mia_tpr_at_01fpr",
                 "selection_rate_majority", "attack_linkteller_auroc", "ece", "h2_test_auroc_true"):
        assert metric_range(name) == (0.0, 1.0), name
    for name in ("epsilon", "delta", "eps_lower", "attack_lsa_gain", "test_auroc_diff", "val_acc_noisy",
                 "train_seconds", "base_rate_gap", "delta_eo", "num_nodes"):
        assert metric_range(name) is None, name


def test_clipped_intervals_are_marked_in_every_table(tmp_path: Path):
    """2 seeds: the cells show [0.000, 1.000] with the mark, the Markdown has the sentence under the table, the
    LaTeX caption too; summary.csv keeps the t-interval as computed."""
    _two_seed_sweep(tmp_path / "s")
    report = make_report(tmp_path / "s", metrics=["test_auroc"])
    assert report.summary["test_auroc_ci_lo"].min() < 0 and report.summary["test_auroc_ci_hi"].max() > 1
    table = display_table(report.summary)
    assert set(table["test_auroc"]) == {"0.600 ± 0.212 [0.000, 1.000]" + CLIP_MARK,
                                       "0.600 ± 0.141 [0.000, 1.000]" + CLIP_MARK}
    assert footnotes(table) == [CLIPPED_NOTE]
    assert to_markdown(table).endswith(f"|\n\n{CLIPPED_NOTE}\n")
    assert (tmp_path / "s" / "report" / "summary.md").read_text() == to_markdown(table)
    tex = (tmp_path / "s" / "report" / "summary.tex").read_text()
    assert r"$^\dagger$" in tex and "too few seeds" in tex and "†" not in tex
    csv = pd.read_csv(tmp_path / "s" / "report" / "summary.csv")
    assert csv["test_auroc_ci_lo"].min() < 0  # the numbers stay the t-interval


def test_unclipped_tables_have_no_mark(tmp_path: Path):
    """Five seeds close together: no mark, no footnote, the Markdown is the table alone."""
    for seed in range(5):
        write_run(tmp_path / "s", f"seed={seed}", config("none", None, seed), {"test_auroc": 0.7 + seed / 100,
                                                                                 "seed": seed})
    table = display_table(make_report(tmp_path / "s", metrics=["test_auroc"]).summary)
    assert CLIP_MARK not in "".join(table["test_auroc"]) and footnotes(table) == []
    assert to_markdown(table).count("\n") == 3


def _texts(ax: plt.Axes) -> str:
    """Every free text of an axes (not titles or tick labels)."""
    return "\n".join(t.get_text() for t in ax.texts)


def test_plots_clip_mark_and_say_that_two_seeds_resolve_nothing(tmp_path: Path):
    """The bands and error bars stay inside [0, 1], the clipped ends get triangles, and the axes say n < 3."""
    _two_seed_sweep(tmp_path / "s")
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    for fig in (metric_vs_x_figure(summary, "test_auroc", "epsilon"), metric_by_keys_figure(summary, "test_auroc"),
                pareto_figure(summary, "epsilon", "test_auroc")):
        ax = fig.axes[0]
        text = _texts(ax)
        assert "n < 3 seeds" in text and "min n = 2" in text and "clipped" in text, text
        triangles = [line for line in ax.get_lines() if line.get_marker() in ("^", "v")]
        assert triangles and all(set(np.round(line.get_ydata(), 9)) <= {0.0, 1.0} for line in triangles)
        for collection in ax.collections:  # bands (fill_between) and error bars
            for path in collection.get_paths():
                ys = path.vertices[:, 1]
                if len(ys):
                    assert ys.min() >= -1e-9 and ys.max() <= 1 + 1e-9


def test_enough_seeds_no_note(tmp_path: Path):
    """Three seeds or more and intervals inside the range: nothing written on the axes."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    summary = make_report(tmp_path / "s", metrics=["train_seconds"]).summary
    assert _texts(metric_vs_x_figure(summary, "train_seconds", "epsilon").axes[0]) == ""


def test_pareto_titles_do_not_overlap(tmp_path: Path):
    """Two panels (edge and node level): the figure's two-line title sits above the panels' titles."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    fig = pareto_figure(summary, "epsilon", "test_auroc")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert len(titles) == 2 and all(top.y0 > title.y1 for title in titles)


def test_private_and_non_private_mix_is_not_a_warning(tmp_path: Path, capsys):
    """Fields only the private runs report (epsilon, the mechanism's diagnostics): no differing-metrics warning."""
    _two_seed_sweep(tmp_path / "s")
    assert main([str(tmp_path / "s"), "--metrics", "test_auroc"]) == EXIT_OK
    assert "different metric sets" not in capsys.readouterr().err


def test_a_mechanism_without_noise_beside_its_private_runs_is_not_a_warning(tmp_path: Path, capsys):
    """GAP at epsilon inf (no noise, no budget, no noise diagnostics) beside GAP at epsilon 1: no warning."""
    for seed in range(2):
        write_run(tmp_path / "s", f"privacy.epsilon=inf,seed={seed}", config("gap_edp", float("inf"), seed),
                  {"test_auroc": 0.7, "epsilon": None, "privacy_unit": "edge", "seed": seed})
        write_run(tmp_path / "s", f"privacy.epsilon=1,seed={seed}", config("gap_edp", 1.0, seed),
                  {"test_auroc": 0.6, "epsilon": 1.0, "privacy_unit": "edge", "seed": seed, "hop1_snr": 0.3})
    assert main([str(tmp_path / "s"), "--metrics", "test_auroc"]) == EXIT_OK
    assert "different metric sets" not in capsys.readouterr().err


def test_genuinely_mixed_sweep_still_warns(tmp_path: Path):
    """A field that some runs of the same mechanism report and others do not: still a warning."""
    _two_seed_sweep(tmp_path / "s")
    write_run(tmp_path / "s", "privacy=none,seed=2", config("none", None, 2),
              {"test_auroc": 0.6, "epsilon": None, "privacy_unit": None, "seed": 2, "val_auroc_new": 0.5})
    notes = make_report(tmp_path / "s", metrics=["test_auroc"]).notes
    assert any("1 fields only in some runs" in n and "val_auroc_new" in n for n in notes), notes


@pytest.mark.slow
def test_report_warnings_print_without_a_source_line(tmp_path: Path):
    """A ReportWarning escaping to Python's default handler (the Python API) is one line, no file:line of ours."""
    _two_seed_sweep(tmp_path / "s")
    code = ("import gnnrisk.report as r; r.summarize(r.load(r'%s'), ['test_auroc'])" % (tmp_path / "s"))
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all(line.startswith("gnnrisk.report: warning: ") for line in lines), err
    assert "fewer than 3 seeds" in err and ".py:" not in err
    with warnings.catch_warnings():
        assert warnings.formatwarning("x", UserWarning, "/a/b.py", 3).startswith("/a/b.py:3: UserWarning: x")
        assert warnings.formatwarning(ReportWarning("y"), ReportWarning, "/a/b.py", 3) == \
            "gnnrisk.report: warning: y\n"
