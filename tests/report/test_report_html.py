"""`gnnrisk-report SWEEP_DIR --html`: one self-contained page with every table and plot of the report."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pytest

from gnnrisk.report.cli import EXIT_OK, EXIT_PARTIAL, main
from gnnrisk.report.html import header_html
from gnnrisk.report.tables import display_table, paired_table
from gnnrisk.report.build import make_report
from report_fixtures import fake_sweep, model_sweep


def _page(out: Path) -> str:
    """The page's text, character references resolved."""
    return html.unescape((out / "index.html").read_text(encoding="ascii"))


@pytest.mark.slow
def test_html_page_has_every_table_and_plot(tmp_path: Path):
    """Summary, paired and failed tables (every cell), every PNG embedded and its PDF linked; nothing remote."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    assert main([str(tmp_path / "s"), "--metrics", "test_acc,test_auroc", "--html"]) == EXIT_OK
    out = tmp_path / "s" / "report"
    page = _page(out)
    report = make_report(tmp_path / "s", tmp_path / "again", metrics=["test_acc", "test_auroc"])
    for table in (display_table(report.summary), paired_table(report.summary)):
        for cell in table.to_numpy().ravel():
            assert f">{cell}</td>" in page
    assert "Failed or unfinished runs (2)" in page and "privacy.epsilon=-1.0 is not allowed" in page
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:
        assert base64.b64encode(png.read_bytes()).decode() in page
        assert f'href="{png.with_suffix(".pdf").name}"' in page
    assert len(re.findall(r"<img ", page)) == len(pngs)
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<script" not in page
    assert "test accuracy (observed labels)<br><code>test_acc</code>" in page
    assert (out / "index.html").stat().st_mode & 0o044  # shareable: readable beyond its owner (umask allowing)


def test_html_for_a_model_sweep_has_its_point_plots(tmp_path: Path):
    """A sweep without epsilon: the page embeds the point plots and says why there is no epsilon plot."""
    model_sweep(tmp_path / "s", models=("gcn", "mlp"))
    assert main([str(tmp_path / "s"), "--html", "--out", str(tmp_path / "r")]) == EXIT_OK
    page = _page(tmp_path / "r")
    for metric in ("test_auroc", "test_auroc_true"):  # the defaults for a risk label (no test_auprc here)
        assert f'data-file="{metric}_by_model_name.png"' in page
    assert 'data-file="test_acc_by_model_name.png"' not in page
    assert "no metric-vs-epsilon plots" in page and "<h2 id=\"paired\">" not in page


def test_no_html_unless_asked(tmp_path: Path):
    """Without --html there is no index.html."""
    model_sweep(tmp_path / "s")
    assert main([str(tmp_path / "s")]) == EXIT_OK
    assert not (tmp_path / "s" / "report" / "index.html").exists()


def test_html_without_finished_runs_lists_the_failures(tmp_path: Path):
    """Every run failed: the page still exists, with the problem and the failed runs."""
    from report_fixtures import config, write_run
    write_run(tmp_path / "s", "seed=-1", config("none", None, -1), error="seed=-1 is not allowed")
    assert main([str(tmp_path / "s"), "--html"]) == EXIT_PARTIAL
    page = _page(tmp_path / "s" / "report")
    assert "no run finished" in page and "seed=-1 is not allowed" in page and "<img" not in page


def test_headers_in_words_with_their_keys():
    """Headers: the words and the key; Δ and rise columns too; n and words-only names as they are."""
    assert header_html("attack_linkteller_auroc") == "LinkTeller AUROC<br><code>attack_linkteller_auroc</code>"
    assert header_html("Δ test_auroc") == "Δ test AUROC (observed labels)<br><code>test_auroc</code>"
    assert header_html("test_auroc rise vs next lower ε").startswith("test AUROC (observed labels) rise vs")
    assert header_html("n") == "n" and header_html("seed") == "seed"
