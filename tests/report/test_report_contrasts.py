"""Paired contrasts of the study scripts: one row per seed, a t-interval of the per-seed differences."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from gnnrisk.report.contrasts import paired_cell, runs_by_seed, write_into


def test_runs_by_seed_selects_one_group_and_epsilon():
    """Only the named mechanism, model and epsilon; a repeated seed counts once."""
    runs = pd.DataFrame({"cfg.privacy.name": ["gap_edp", "gap_edp", "gap_edp", "none", "gap_edp"],
                         "cfg.model.name": ["gcn", "gcn", "sage", "gcn", "gcn"],
                         "cfg.privacy.epsilon": [1.0, 2.0, 1.0, None, 1.0], "cfg.seed": [0, 0, 0, 0, 0],
                         "m": [0.1, 0.2, 0.3, 0.4, 0.5]})
    assert runs_by_seed(runs, "gap_edp", "gcn", 1.0)["m"].tolist() == [0.1]
    assert runs_by_seed(runs, "none", "gcn", None)["m"].tolist() == [0.4]


def test_paired_cell_is_the_t_interval_of_the_differences():
    """Mean and 95% Student-t interval of the per-seed differences; a star when it excludes 0; NaN pairs dropped."""
    diff = pd.Series([0.10, 0.12, 0.08, 0.11, float("nan")])
    d = diff.dropna()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / len(d) ** 0.5
    assert paired_cell(diff) == f"+{d.mean():.3f} [+{d.mean() - half:.3f}, +{d.mean() + half:.3f}]*"
    assert paired_cell(pd.Series([0.1, -0.1, 0.05])).endswith("]")  # interval holds 0: no star
    assert paired_cell(pd.Series([float("nan")])) == "–"
    assert pytest.approx(d.mean()) == 0.1025


def test_mean_cell_and_markdown_table():
    """`mean [lo, hi] (n)` with the 95% t-interval; one value has no interval; a table with its index first."""
    from gnnrisk.report.contrasts import markdown_table, mean_cell

    assert mean_cell(pd.Series([0.5, 0.7])) == "0.600 [-0.671, 1.871] (n=2)"  # t(1) = 12.706, se = 0.1
    assert mean_cell(pd.Series([0.5, None, "x"])) == "0.500 (n=1)" and mean_cell(pd.Series([], dtype=float)) == "–"
    table = pd.DataFrame({"a": ["1", "2"], "b": ["3", "4"]}, index=["r", "s"])
    assert markdown_table(table, "row") == "| row | a | b |\n|---|---|---|\n| r | 1 | 3 |\n| s | 2 | 4 |"


def test_write_into_replaces_only_the_marked_regions(tmp_path):
    """A region's old table is replaced; text outside, and regions of another prefix or key, stay."""
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- s:a:begin -->\nold\n<!-- s:a:end -->\nmid\n<!-- t:a:begin -->\nkeep\n<!-- t:a:end -->\n")
    write_into(page, {"a": "| new |", "b": "| unused |"}, "s")
    assert page.read_text() == ("intro\n<!-- s:a:begin -->\n| new |\n<!-- s:a:end -->\nmid\n"
                                "<!-- t:a:begin -->\nkeep\n<!-- t:a:end -->\n")
