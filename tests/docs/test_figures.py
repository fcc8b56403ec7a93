"""Quoted figures cannot go stale: every figure README.md, docs/ and experiments/*.md mark equals what its
committed result file gives (`python experiments/figures.py --check`, what `make figures` rewrites)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def figures() -> ModuleType:
    """experiments/figures.py as a module (it is a script, not part of the package)."""
    name = "_experiments_figures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / "figures.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_quoted_figure_equals_its_source() -> None:
    """The check `make test` runs: a figure that differs from its committed source fails here."""
    changes, total = figures().run(check=True)
    assert not changes, "stale figures (run `make figures`):\n" + "\n".join(map(str, changes))
    assert total >= 200, total  # the pages are marked (a broken parser would find none and pass)


@pytest.mark.parametrize("page", ["README.md", "experiments/README.md", "experiments/quick.md",
                                  "experiments/tradeoff.md", "experiments/attacks.md", "docs/config/attack.md"])
def test_pages_quoting_committed_results_mark_them(page: str) -> None:
    """The pages whose figures come from committed result files carry markers and declare their sources."""
    module = figures()
    _, _, count = module.update_page(REPO / page)
    assert count >= 3, page
    sources = module.load_sources((REPO / page).read_text(), page)
    assert sources and all(s.name.startswith("experiments/") and "_figures/" in s.name for s in sources.values())


def _repo(tmp_path: Path, page: str) -> Path:
    """A tiny repository: a result CSV and a README quoting it."""
    (tmp_path / "experiments" / "x_figures").mkdir(parents=True)
    (tmp_path / "experiments" / "x_figures" / "summary.csv").write_text(
        "model.name,privacy.name,privacy.epsilon,n_runs,test_auroc_mean,test_auroc_diff_mean\n"
        "gcn,none,,5,0.6781,\n"
        "gcn,gap_edp,8.0,5,0.6974,0.0194\n"
        "gcn,gap_edp,1.0,5,0.5877,-0.0904\n"
        "mlp,none,,5,0.5698,\n")
    (tmp_path / "README.md").write_text(page)
    return tmp_path


DECLARE = "<!-- figures s = experiments/x_figures/summary.csv -->\n\n"


def test_a_stale_figure_fails_the_check_and_make_figures_fixes_it(tmp_path: Path) -> None:
    module = figures()
    repo = _repo(tmp_path, DECLARE + "GCN <!-- fig s[gcn,none].test_auroc_mean -->0.700<!-- /fig -->, gain "
                                     "<!-- fig s[gcn,none].test_auroc_mean - s[mlp,none].test_auroc_mean :+.3f -->"
                                     "+0.108<!-- /fig -->, GAP <!-- fig s[privacy=gap_edp,privacy.epsilon=8]"
                                     ".test_auroc_diff_mean :+.2f -->+0.02<!-- /fig -->\n")
    changes, total = module.run(check=True, repo=repo)
    assert total == 3 and [(c.old, c.new) for c in changes] == [("0.700", "0.678")]
    assert "0.700" in (repo / "README.md").read_text()  # check mode writes nothing
    module.run(check=False, repo=repo)
    assert "-->0.678<!-- /fig -->" in (repo / "README.md").read_text()
    assert module.run(check=True, repo=repo) == ([], 3)


def test_markers_in_code_are_text(tmp_path: Path) -> None:
    """A marker shown in a code block or code span (documenting the syntax) is not a figure."""
    module = figures()
    repo = _repo(tmp_path, DECLARE + "```markdown\n<!-- fig s[gcn,none].test_auroc_mean -->0.1<!-- /fig -->\n```\n"
                                     "`<!-- fig s[gcn,none].test_auroc_mean -->0.2<!-- /fig -->`\n")
    assert module.run(check=True, repo=repo) == ([], 0)


@pytest.mark.parametrize("figure, message", [
    ("s[gcn].test_auroc_mean", "matches 3 rows"),                 # ambiguous row
    ("s[gcn,lapgraph].test_auroc_mean", "matches 0 rows"),
    ("s[gcn,none].test_acc_mean", "no column 'test_acc_mean'"),
    ("s[gcn,none].test_auroc_diff_mean", "is empty"),
    ("t[gcn,none].test_auroc_mean", "no source 't'"),
    ("__import__('os').getcwd()", "reads no cell"),
    ("s[gcn,none].test_auroc_mean.real", "no column"),
    ("s[gcn,none].test_auroc_mean ** 2", "not allowed"),
    ("s[gcn,none].test_auroc_mean :.3q", "not an expression"),
])
def test_a_bad_marker_is_an_error_naming_the_line(tmp_path: Path, figure: str, message: str) -> None:
    module = figures()
    repo = _repo(tmp_path, DECLARE + "figure <!-- fig " + figure + " -->0.1<!-- /fig -->\n")
    with pytest.raises(module.FigureError, match="README.md:3: .*" + message.replace("(", r"\(").replace("*", r"\*")):
        module.run(check=True, repo=repo)


@pytest.mark.parametrize("page, message", [
    (DECLARE + "<!-- fig s[gcn,none].test_auroc_mean -->0.678<!-- /fig --> at the start\n", "must not start a line"),
    ("Text\n" + DECLARE + "more", "paragraph of its own"),
])
def test_markers_that_github_would_show_are_refused(tmp_path: Path, page: str, message: str) -> None:
    """A marker opening a line (an HTML block on GitHub) or a declaration inside a paragraph would break the
    rendered text: refused, so that the syntax stays invisible."""
    module = figures()
    with pytest.raises(module.FigureError, match=message):
        module.run(check=True, repo=_repo(tmp_path, page))


def test_a_source_must_be_a_csv_file_of_the_repository(tmp_path: Path) -> None:
    module = figures()
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b_mean\nx,1\n")
    repo = _repo(tmp_path / "repo", "<!-- figures s = ../outside.csv -->\n")
    with pytest.raises(module.FigureError, match="not a file in the repository"):
        module.run(check=True, repo=repo)


def test_a_source_ignored_by_git_is_refused() -> None:
    """A sweep's own folder (outputs/, ignored) is not a committed result file."""
    module = figures()
    folder = REPO / "outputs" / "_figures_test"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / "summary.csv").write_text("a,b_mean\nx,1\n")
        with pytest.raises(module.FigureError, match="ignored by git"):
            module.load_sources("<!-- figures s = outputs/_figures_test/summary.csv -->", "page.md")
    finally:
        shutil.rmtree(folder)


def test_report_regions_are_rebuilt_from_the_report_source(tmp_path: Path) -> None:
    """A page naming a `report` source gets its gnnrisk-report tables as `gnnrisk-report --into` writes them."""
    from gnnrisk.report.tables import display_table, to_markdown

    module = figures()
    (tmp_path / "experiments" / "q_figures").mkdir(parents=True)
    shutil.copy(REPO / "experiments" / "quick_figures" / "summary.csv", tmp_path / "experiments" / "q_figures")
    (tmp_path / "README.md").write_text("<!-- figures report = experiments/q_figures/summary.csv -->\n\n"
                                        "<!-- gnnrisk-report:summary:begin -->\nold\n<!-- gnnrisk-report:summary:end -->\n")
    changes, _ = module.run(check=False, repo=tmp_path)
    assert changes
    text = (tmp_path / "README.md").read_text()
    summary = module.Source(tmp_path / "experiments" / "q_figures" / "summary.csv", tmp_path).frame
    assert to_markdown(display_table(summary)) in text and "\nold\n" not in text
    assert module.run(check=True, repo=tmp_path)[0] == []


def test_budgets_round_up() -> None:
    """`ceil` quotes a spent epsilon as the tables do: never below what was spent."""
    module = figures()
    assert module.render(module.ceil(1.9985, 3), ".3f") == "1.999"
    assert module.render(module.ceil(7.996481, 3), ".3f") == "7.997"
    assert module.render(module.ceil(2.0, 3), ".3f") == "2.000"
