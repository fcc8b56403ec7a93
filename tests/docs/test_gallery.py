"""The tutorial gallery (docs/gallery/*.py): each tutorial is a jupytext script at small sizes, listed in the
nav, and writes only into a temporary folder. The site build executes every tutorial as a notebook, failing on
a failing cell, and each script asserts what its text claims about its output (test_docs.py:
test_site_builds_with_strict_checks, test_gallery_pages_show_executed_outputs_and_figures)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GALLERY = REPO / "docs" / "gallery"
TUTORIALS = sorted(GALLERY.glob("*.py"))
SECONDS = 60  # each tutorial runs well under a minute on 2 cores (measured: 10-35 s); the timeout is 4x that


def _run(script: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=4 * SECONDS)


def test_every_tutorial_is_listed_here_and_in_the_nav() -> None:
    assert {t.stem for t in TUTORIALS} == {"quick_study", "private_run", "attack_audit", "fairness_feedback"}
    nav = (REPO / "mkdocs.yml").read_text()
    for tutorial in TUTORIALS:
        assert f"gallery/{tutorial.name}" in nav, tutorial.name
        assert f"({tutorial.name})" in (GALLERY / "index.md").read_text(), tutorial.name


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_is_a_jupytext_script_with_small_sizes(tutorial: Path) -> None:
    """Percent-format cells, a title cell first, and the small sizes on every run (no study at full size)."""
    text = tutorial.read_text()
    ast.parse(text)
    assert text.startswith("# %% [markdown]\n# # "), "the first cell is the title"
    assert "data.num_nodes=300" in text and "train.epochs=10" in text
    assert "GNNRISK_GALLERY_OUT" in text and "tempfile.mkdtemp" in text
    for link in re.findall(r"\]\(([^)#]+)", text):   # links of the rendered page: the site's .html pages
        if not link.startswith("http"):
            assert link.endswith(".html"), link


@pytest.mark.slow
def test_tutorial_without_a_folder_writes_into_a_temporary_one(tmp_path: Path) -> None:
    """Without GNNRISK_GALLERY_OUT a tutorial writes into a fresh folder of the system's temp folder, never
    into the working directory (the site build runs them from the repository root)."""
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GNNRISK_GALLERY_OUT"}
    env.update(TMPDIR=str(temp), MPLBACKEND="Agg")
    result = _run(GALLERY / "private_run.py", work, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not any(work.iterdir())
    assert list(temp.glob("gnnrisk-gallery-*/private_run/gap_ndp/metrics.json"))
