"""`--into PATH.md` (and the callback's `into`): only the marked regions of a write-up change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gnnrisk.report.callback import ReportOnMultirunEnd
from gnnrisk.report.cli import EXIT_ERROR, EXIT_OK, main
from gnnrisk.report.writeup import markers
from report_fixtures import paired_sweep

SUMMARY, PAIRED = markers("summary"), markers("paired")
# CRLF lines, a non-ASCII character and no final newline outside the regions: all must survive byte for byte
BEFORE = "# Results\r\n\r\nPrivacy costs ≈ little:\r\n"
BETWEEN = "\nPaired with the same seed:\n"
AFTER = "\nThe end, no newline"


def _writeup(path: Path, summary: bool = True, paired: bool = True) -> None:
    """A write-up with stale tables inside the regions that `summary` and `paired` ask for."""
    text = BEFORE
    if summary:
        text += f"{SUMMARY[0]}\n| old | table |\n{SUMMARY[1]}\n"
    text += BETWEEN
    if paired:
        text += f"{PAIRED[0]}\nold paired\nlines\n{PAIRED[1]}\n"
    path.write_bytes((text + AFTER).encode())


def _sweep(tmp_path: Path) -> Path:
    """A small sweep with a non-private reference, so that both tables exist."""
    paired_sweep(tmp_path / "s", {"gcn": -0.03}, n_seeds=3)
    return tmp_path / "s"


def test_into_replaces_only_the_marked_regions(tmp_path: Path):
    """Both regions hold the new summary.md and paired.md; everything else is byte-identical."""
    sweep, doc = _sweep(tmp_path), tmp_path / "results.md"
    _writeup(doc)
    assert main([str(sweep), "--metrics", "test_auroc", "--into", str(doc)]) == EXIT_OK
    summary_md = (sweep / "report" / "summary.md").read_text()
    paired_md = (sweep / "report" / "paired.md").read_text()
    expected = (BEFORE + f"{SUMMARY[0]}\n{summary_md}{SUMMARY[1]}\n" + BETWEEN
                + f"{PAIRED[0]}\n{paired_md}{PAIRED[1]}\n" + AFTER)
    assert doc.read_bytes() == expected.encode()
    assert "| edgerand |" in summary_md and "]* |" in paired_md


def test_into_touches_only_the_markers_present_and_is_idempotent(tmp_path: Path):
    """A write-up with only the summary region gets only that; a second run changes nothing."""
    sweep, doc = _sweep(tmp_path), tmp_path / "results.md"
    _writeup(doc, paired=False)
    assert main([str(sweep), "--metrics", "test_auroc", "--into", str(doc)]) == EXIT_OK
    once = doc.read_bytes()
    assert once.startswith(BEFORE.encode()) and once.endswith((BETWEEN + AFTER).encode())
    assert b"| old | table |" not in once and b"privacy.name" in once and b"\xce\x94" not in once  # no Δ column
    assert main([str(sweep), "--metrics", "test_auroc", "--into", str(doc)]) == EXIT_OK
    assert doc.read_bytes() == once


def test_into_without_markers_is_an_error(tmp_path: Path, capsys):
    """No markers: exit 2, one line naming the flag and the file; the file is unchanged and nothing is written."""
    sweep, doc = _sweep(tmp_path), tmp_path / "notes.md"
    doc.write_text("# Notes\n\nno markers here\n")
    capsys.readouterr()
    assert main([str(sweep), "--metrics", "test_auroc", "--into", str(doc)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"gnnrisk-report: error: --into={str(doc)!r} is not allowed: ")
    assert "no gnnrisk-report markers" in err
    assert doc.read_text() == "# Notes\n\nno markers here\n"
    assert not (sweep / "report").exists()


@pytest.mark.parametrize("text", [f"{SUMMARY[0]}\nno end\n", f"{SUMMARY[1]}\n{SUMMARY[0]}\n",
                                  f"{SUMMARY[0]}\n{SUMMARY[1]}\n{SUMMARY[0]}\n{SUMMARY[1]}\n"])
def test_into_with_broken_markers_is_an_error(tmp_path: Path, capsys, text: str):
    """A begin without end, an end before its begin, or a region twice: exit 2, file unchanged, nothing written."""
    sweep, doc = _sweep(tmp_path), tmp_path / "results.md"
    doc.write_text(text)
    assert main([str(sweep), "--metrics", "test_auroc", "--into", str(doc)]) == EXIT_ERROR
    assert "expected one line" in capsys.readouterr().err and doc.read_text() == text
    assert not (sweep / "report").exists()


@pytest.mark.parametrize("name, reason", [("nope.md", "cannot read it"), ("folder", "it is a folder")])
def test_into_missing_file_or_folder_is_an_error(tmp_path: Path, capsys, name: str, reason: str):
    """A write-up that does not exist, or a folder: exit 2, one line naming --into, nothing written."""
    sweep = _sweep(tmp_path)
    (tmp_path / "folder").mkdir()
    assert main([str(sweep), "--metrics", "test_auroc", "--into", str(tmp_path / name)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"gnnrisk-report: error: --into={str(tmp_path / name)!r} is not allowed: {reason}")
    assert err.count("\n") == 1 and "Traceback" not in err and not (sweep / "report").exists()


def test_callback_with_a_missing_into_still_reports(tmp_path: Path, capsys):
    """The callback (not a command line): a missing write-up is a problem; the report is written all the same."""
    sweep = _sweep(tmp_path)
    ReportOnMultirunEnd(metrics=["test_auroc"], into=str(tmp_path / "nope.md")).on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert "nope.md: cannot read it" in capsys.readouterr().err
    assert (sweep / "report" / "summary.md").exists()


def test_callback_into(tmp_path: Path, capsys):
    """ReportOnMultirunEnd(into=...) updates the write-up at the end of the sweep; both tables are printed."""
    sweep, doc = _sweep(tmp_path), tmp_path / "results.md"
    _writeup(doc)
    callback = ReportOnMultirunEnd(metrics=["test_auroc"], into=str(doc))
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert (sweep / "report" / "paired.md").read_text() in doc.read_text()
    out = capsys.readouterr().out
    assert "mean ± std (ddof=1) over seeds" in out and "paired difference to the non-private run" in out
    assert ReportOnMultirunEnd().into is None


def test_digits_reach_the_written_tables(tmp_path: Path):
    """`--digits 1`: summary.md, summary.tex and paired.md carry one decimal, and so does the write-up."""
    sweep, doc = _sweep(tmp_path), tmp_path / "results.md"
    _writeup(doc)
    assert main([str(sweep), "--metrics", "test_auroc", "--digits", "1", "--into", str(doc)]) == 0
    for name in ("summary.md", "summary.tex", "paired.md"):
        text = (sweep / "report" / name).read_text()
        numbers = re.findall(r"\d+\.\d+", text)
        assert numbers and all(len(n.split(".")[1]) == 1 for n in numbers), (name, numbers)
    assert (sweep / "report" / "summary.md").read_text() in doc.read_text()


def test_callback_html_and_digits(tmp_path: Path):
    """ReportOnMultirunEnd(html=True, digits=2) writes index.html; digits outside 0..10 is refused by name."""
    from gnnrisk.errors import ConfigError

    sweep = _sweep(tmp_path)
    ReportOnMultirunEnd(metrics=["test_auroc"], html=True, digits=2).on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert (sweep / "report" / "index.html").exists()
    assert "±" in (sweep / "report" / "summary.md").read_text()
    with pytest.raises(ConfigError, match="hydra.callbacks.report.digits"):
        ReportOnMultirunEnd(digits=11)
