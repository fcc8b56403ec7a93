"""Plots for every sweep: point plots by the varied keys where there is no epsilon axis, titles and axes in words,
dodged series, reference lines (chance, the true-label counterpart)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from gnnrisk.report.build import make_report
from gnnrisk.report.cli import EXIT_OK, main
from gnnrisk.report.labels import is_attack_auroc, label, true_counterpart
from gnnrisk.report.plots import dodge_offsets, metric_by_keys_figure, metric_vs_x_figure, pareto_figure
from report_fixtures import fake_sweep, model_sweep, paired_sweep

HEADLINE = ["test_acc", "test_auroc", "attack_linkteller_auroc"]


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures built by the tests are closed after each one."""
    yield
    plt.close("all")


def _point_plots(out: Path) -> set[str]:
    """Names of the point plots (PNG) in a report folder."""
    return {p.name for p in out.glob("*_by_*.png")}


def test_model_sweep_gets_one_point_plot_per_headline_metric(tmp_path: Path, capsys):
    """No epsilon anywhere: one `<metric>_by_model_name` plot (PNG and PDF) per metric, a note, no epsilon plot."""
    model_sweep(tmp_path / "s", models=("gcn", "mlp", "sage"))
    assert main([str(tmp_path / "s"), "--metrics", ",".join(HEADLINE)]) == EXIT_OK
    out = tmp_path / "s" / "report"
    assert _point_plots(out) == {f"{m}_by_model_name.png" for m in HEADLINE}
    for metric in HEADLINE:
        assert (out / f"{metric}_by_model_name.pdf").exists()
        assert (out / f"{metric}_by_model_name.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*_vs_*")) and not list(out.glob("pareto_*"))
    assert "point plots by model instead" in capsys.readouterr().err


def test_default_metrics_get_point_plots(tmp_path: Path):
    """Without --metrics: the default metrics (here of a risk label: AUROC, not accuracy) each get their point plot."""
    model_sweep(tmp_path / "s")
    report = make_report(tmp_path / "s")
    assert _point_plots(tmp_path / "s" / "report") == {
        f"{m}_by_model_name.png" for m in ("test_auroc", "test_auroc_true")}
    assert not report.problems


def test_point_plot_words_intervals_and_reference_marks(tmp_path: Path):
    """Title, axes and legend in words; error bars = the summary's t-interval; chance at 0.5; x = first key."""
    model_sweep(tmp_path / "s", models=("gcn", "mlp"), topologies=("dcsbm", "holme_kim"))
    summary = make_report(tmp_path / "s", metrics=HEADLINE).summary
    fig = metric_by_keys_figure(summary, "attack_linkteller_auroc")
    ax = fig.axes[0]
    assert ax.get_title().splitlines()[0] == "LinkTeller AUROC by model"
    assert "95% Student-t interval" in ax.get_title()
    assert ax.get_xlabel() == "model" and ax.get_ylabel() == "LinkTeller AUROC"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gcn", "mlp"]
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "topology"
    assert [t.get_text() for t in legend.get_texts()] == ["dcsbm", "holme_kim", "chance (AUROC 0.5)"]
    chance = [line for line in ax.get_lines() if list(line.get_ydata()) == [0.5, 0.5]]
    assert len(chance) == 1
    # the error bars span each group's ci_lo..ci_hi from the summary (the tables' interval)
    bars = np.concatenate([c[2][0].get_segments() for c in ax.containers])  # ErrorbarContainer: (line, caps, bars)
    spans = sorted((round(s[0][1], 12), round(s[1][1], 12)) for s in bars)
    expected = sorted(zip(summary["attack_linkteller_auroc_ci_lo"].clip(lower=0).round(12),
                          summary["attack_linkteller_auroc_ci_hi"].clip(upper=1).round(12)))  # clipped to [0, 1]
    assert spans == expected


def test_point_plot_shows_the_true_label_counterpart(tmp_path: Path):
    """test_acc's plot marks test_acc_true's group means (hollow) at the same positions, named in the legend."""
    model_sweep(tmp_path / "s", models=("gcn", "mlp"))
    runs = make_report(tmp_path / "s", metrics=["test_acc", "test_acc_true"])
    fig = metric_by_keys_figure(runs.summary, "test_acc", counterpart="test_acc_true")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "test accuracy (observed labels)"
    hollow = [line for line in ax.get_lines() if line.get_marker() == "D" and len(line.get_ydata())]
    assert sorted(np.concatenate([h.get_ydata() for h in hollow])) == pytest.approx(
        sorted(runs.summary["test_acc_true_mean"]))
    assert "hollow: test accuracy (true labels)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_dodge_offsets_are_distinct_and_centred():
    """Series at one category get distinct offsets, symmetric about it, never reaching the next category."""
    assert list(dodge_offsets(1)) == [0.0]
    for n in (2, 3, 5, 12):
        off = dodge_offsets(n)
        assert len(set(np.round(off, 12))) == n and off.sum() == pytest.approx(0.0)
        assert np.all(np.diff(off) > 0) and np.abs(off).max() < 0.5


def test_series_at_one_category_are_dodged(tmp_path: Path):
    """In the figure, the series' points at the same model sit at distinct x, within that model's slot."""
    model_sweep(tmp_path / "s", models=("gcn", "mlp"), topologies=("dcsbm", "holme_kim", "watts_strogatz"))
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    ax = metric_by_keys_figure(summary, "test_auroc").axes[0]
    xs = np.concatenate([c[0].get_xdata() for c in ax.containers])  # the mean markers
    assert len(xs) == 6 and len(set(np.round(xs, 9))) == 6
    for category in (0, 1):
        mine = xs[np.abs(xs - category) < 0.5]
        assert len(mine) == 3 and len(set(np.round(mine, 9))) == 3


def test_legend_is_outside_the_data_area(tmp_path: Path):
    """The legend is anchored right of the axes (x > 1 in axes coordinates)."""
    model_sweep(tmp_path / "s", topologies=("dcsbm", "holme_kim"))
    summary = make_report(tmp_path / "s", metrics=["test_auroc"]).summary
    fig = metric_by_keys_figure(summary, "test_auroc")
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent().transformed(ax.transAxes.inverted())
    assert box.x0 > 1.0


@pytest.mark.slow
def test_epsilon_plot_words_and_units(tmp_path: Path):
    """The epsilon plot says `spent ε (edge level)` for an edge-level sweep, both units when mixed; in words."""
    paired_sweep(tmp_path / "p", {"gcn": -0.03})
    summary = make_report(tmp_path / "p", metrics=["test_auroc"]).summary
    ax = metric_vs_x_figure(summary, "test_auroc", "epsilon").axes[0]
    assert ax.get_xlabel().startswith("spent ε (edge level)")
    assert ax.get_title().startswith("test AUROC (observed labels) vs spent ε (edge level)")
    fake_sweep(tmp_path / "f", np.random.default_rng(0))
    mixed = make_report(tmp_path / "f", metrics=["test_auroc"]).summary
    ax = metric_vs_x_figure(mixed, "test_auroc", "epsilon").axes[0]
    assert ax.get_xlabel().startswith("spent ε (edge or node level)")
    assert ax.get_legend().get_title().get_text() == "mechanism"
    fig = pareto_figure(mixed, "epsilon", "test_auroc")
    assert fig.axes[0].get_xlabel() == "spent ε (edge level) (lower is better)"
    assert fig.axes[0].get_ylabel() == "test AUROC (observed labels) (higher is better)"


def test_single_spent_epsilon_also_gets_point_plots(tmp_path: Path):
    """Private runs at one epsilon (no epsilon axis to read): the epsilon plot as before, and point plots."""
    paired_sweep(tmp_path / "p", {"gcn": -0.03, "sage": -0.05}, n_seeds=3)
    make_report(tmp_path / "p", metrics=["test_auroc"])
    out = tmp_path / "p" / "report"
    assert (out / "test_auroc_vs_epsilon.png").exists() and (out / "test_auroc_by_model_name.png").exists()


def test_epsilon_axis_sweep_has_no_point_plots(tmp_path: Path):
    """A sweep over epsilon keeps exactly its old plots (metric vs epsilon, Pareto)."""
    fake_sweep(tmp_path / "f", np.random.default_rng(0))
    make_report(tmp_path / "f", metrics=["test_acc", "test_auroc"])
    out = tmp_path / "f" / "report"
    assert {p.name for p in out.glob("*.png")} == {"test_acc_vs_epsilon.png", "test_auroc_vs_epsilon.png",
                                                    "pareto_epsilon_test_acc.png"}


def test_x_may_name_a_text_key(tmp_path: Path):
    """`--x privacy.name` (a key without numbers): point plots by mechanism, series = the target epsilon."""
    fake_sweep(tmp_path / "f", np.random.default_rng(0))
    report = make_report(tmp_path / "f", metrics=["test_auroc"], x="privacy.name")
    assert not report.problems
    assert (tmp_path / "f" / "report" / "test_auroc_by_privacy_name.png").exists()
    ax = metric_by_keys_figure(report.summary, "test_auroc", "privacy.name").axes[0]
    assert ax.get_xlabel() == "mechanism" and ax.get_legend().get_title().get_text() == "target ε"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dpsgd_node", "edgerand", "none"]


@pytest.mark.parametrize("key, words", [
    ("attack_linkteller_auroc", "LinkTeller AUROC"),
    ("test_auroc_true", "test AUROC (true labels)"),
    ("test_auroc", "test AUROC (observed labels)"),
    ("val_f1", "validation F1 (observed labels)"),
    ("attack_mia_tpr_at_01fpr", "membership inference TPR at 0.1% FPR"),
    ("attack_canary_nodes_auroc", "node canary audit AUROC"),
    ("attack_canary_eps_lower", "ε lower bound (edge canary audit)"),
    ("delta_eo_true", "equal-opportunity gap (true labels)"),
    ("tpr_minority", "TPR of minority (observed labels)"),
    ("train_seconds", "training time (s)"),
    ("model.name", "model"),
    ("cfg.privacy.name", "mechanism"),
    ("privacy.epsilon", "target ε"),
    ("data.observation.detection_rate.minority", "detection rate (minority)"),
    ("epsilon", "spent ε"),
])
def test_known_labels(key: str, words: str):
    """Metric and config keys in words."""
    assert label(key) == words


@pytest.mark.parametrize("key, words", [
    ("attack_foo_bar", "attack foo bar"),
    ("some_new_metric", "some new metric"),
    ("some_new_metric_true", "some new metric true"),
    ("explain.new_thing.name", "explain new thing"),
    ("train.weight_decay", "train weight decay"),
])
def test_label_fallback_is_readable(key: str, words: str):
    """Unknown keys: their parts as words (a `<group>.name` key: the group)."""
    assert label(key) == words


def test_epsilon_label_follows_the_privacy_unit():
    """`spent ε (edge level)`, `(node level)`, both when mixed, plain without a unit."""
    assert label("epsilon", ["edge", "edge"]) == "spent ε (edge level)"
    assert label("epsilon", ["node", None]) == "spent ε (node level)"
    assert label("epsilon", ["node", "edge", float("nan")]) == "spent ε (edge or node level)"
    assert label("epsilon", [None]) == "spent ε"


def test_reference_mark_rules():
    """Chance for attack AUROCs only (not gains, not utility); `_true` counterparts only where reported."""
    assert is_attack_auroc("attack_linkteller_auroc") and is_attack_auroc("attack_mia_confidence_auroc")
    assert not is_attack_auroc("attack_lsa_gain") and not is_attack_auroc("test_auroc")
    assert true_counterpart("test_acc", ["test_acc", "test_acc_true"]) == "test_acc_true"
    assert true_counterpart("test_acc", ["test_acc"]) is None
    assert true_counterpart("test_acc_true", ["test_acc_true_true"]) is None


def test_tables_keep_their_keys(tmp_path: Path):
    """The Markdown/CSV tables keep the metric and config keys (write-ups regenerated with --into stay the same)."""
    model_sweep(tmp_path / "s")
    make_report(tmp_path / "s", metrics=["test_auroc"])
    md = (tmp_path / "s" / "report" / "summary.md").read_text()
    assert md.splitlines()[0].startswith("| model.name |") and "test_auroc |" in md.splitlines()[0]
    assert "test_auroc_mean" in pd.read_csv(tmp_path / "s" / "report" / "summary.csv")
