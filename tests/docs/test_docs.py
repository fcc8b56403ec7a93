"""The documentation site: `mkdocs build --strict` passes (the tutorial gallery executed), the site works
opened from disk, the API reference shows whole signatures and parameter tables, the generated pages cover
every config field, study and benchmark, and the commands of the getting-started page run in order (at tiny
sizes; every page's commands are checked one by one in test_doc_commands.py; the tutorials run as scripts in
test_gallery.py)."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from commands import (PROGRAMS, bash_commands, fenced_blocks, is_setup, run_gnnrisk_report, run_gnnrisk_run,
                      working_directory)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
GETTING_STARTED = DOCS / "getting_started.md"
TUTORIALS = sorted((DOCS / "gallery").glob("*.py"))
GROUPS = ("data", "model", "train", "privacy", "explain", "attack", "audit", "logger", "experiment")
# Material for MkDocs and a plugin print a notice about MkDocs 2 on every build; it says nothing about the site.
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def gen_pages() -> ModuleType:
    """docs/gen_config_pages.py as a module (mkdocs-gen-files runs it as a script at build time)."""
    name = "_docs_gen_config_pages"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DOCS / "gen_config_pages.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def pages() -> dict:
    return gen_pages().generated_pages()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as CI builds it: strict, so a broken link, anchor or nav entry fails the build; the tutorials
    executed (GNNRISK_DOCS_EXECUTE unset), so a failing cell fails it too."""
    out = tmp_path_factory.mktemp("site")
    docs_before = sorted(DOCS.rglob("*"))
    env = {k: v for k, v in os.environ.items() if k != "GNNRISK_DOCS_EXECUTE"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=REPO, env={**env, **QUIET}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(DOCS.rglob("*")) == docs_before, "the build wrote into docs/ (generated pages belong in the build only)"
    return out


# --- the build ---------------------------------------------------------------------------------------

@pytest.mark.slow  # the build executes the tutorials: about two minutes on 2 cores
def test_site_builds_with_strict_checks(site: Path) -> None:
    """Every page of the nav is built, the API reference is rendered from the docstrings."""
    for page in ("index.html", "getting_started.html", "metrics.html", "studies.html", "benchmarks.html",
                 "api.html", "report.html", "temporal.html", "privacy_time.html", "explain_time.html",
                 "studies/quick.html", "gallery/index.html", *(f"gallery/{t.stem}.html" for t in TUTORIALS),
                 *(f"config/{g}.html" for g in GROUPS)):
        assert (site / page).is_file(), page
    reference = (site / "reference" / "privacy.html").read_text()
    assert "calibrate_noise" in reference and "rdp_node_dpsgd" in reference
    assert "RunResult" in (site / "reference" / "api.html").read_text()


def _local_links(page: Path) -> list[str]:
    """The relative targets of a page's links, images, scripts and stylesheets (fragments and queries cut)."""
    out = []
    for match in re.finditer(r'<(?:a|link|img|script|source)\b[^>]*?\b(?:href|src)="([^"]*)"', page.read_text()):
        url = html.unescape(match[1])
        parts = urlsplit(url)
        if not parts.scheme and not url.startswith(("#", "//")) and parts.path:
            out.append(unquote(parts.path))
    return out


@pytest.mark.slow
def test_site_works_opened_from_disk(site: Path) -> None:
    """`use_directory_urls: false`: every relative link of every page names a file of the site, so the built
    folder works from disk (file://) with no server: no link ends in a folder (a folder listing there), none
    is absolute. (404.html is the server's page for a missing path: its links are absolute by design.)"""
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html":
            continue
        for target in _local_links(page):
            if target.startswith("/") or not (page.parent / target).resolve().is_file():
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert not broken, "\n".join(broken[:30])
    assert not (site / "getting_started").exists()


@pytest.mark.slow
def test_api_reference_shows_signatures_lists_and_parameter_tables(site: Path) -> None:
    """Whole signatures (formatted by ruff, one parameter a line), a docstring's list as a list, and a table
    of the parameters with their types and defaults (docs/griffe_docstrings.py)."""
    page = (site / "reference" / "api.html").read_text()
    start = page.index('id="gnnrisk.api.sweep"')
    end = page.find('class="doc doc-heading"', start + 40)
    sweep = page[start:end if end > 0 else len(page)]
    text = html.unescape(re.sub(r"<[^>]+>", "", sweep))
    assert "sweep_dir: str | Path | None = None," in text and "overrides: Sequence[str] = ()" in text
    assert re.search(r"<ul>\s*<li>\s*a mapping", sweep), "the docstring's list is not a list"
    table = sweep[sweep.index("<table"):sweep.index("</table>")]
    for name in ("grid", "sweep_dir", "overrides"):
        assert f"<code>{name}</code>" in table, name
    assert "The sweep folder" in html.unescape(re.sub(r"<[^>]+>", "", table))
    assert 'class="doc doc-heading"' in page and "doc-signature" in page


@pytest.mark.slow
def test_studies_are_in_the_nav_and_titled_without_tags(site: Path) -> None:
    """Every write-up is a page of the nav (mkdocs.yml; `omitted_files: warn` fails the strict build
    otherwise); no title carries the tracker's "(issue N)"; the index table keeps names whole."""
    nav = yaml.safe_load(re.sub(r"!!python/\S+|!ENV", "", (REPO / "mkdocs.yml").read_text()))["nav"]
    studies = next(entry["Studies"] for entry in nav if isinstance(entry, dict) and "Studies" in entry)
    listed = {next(iter(e.values())) if isinstance(e, dict) else e for e in studies}
    for writeup in (REPO / "experiments").glob("*.md"):
        if writeup.name != "README.md":
            assert f"studies/{writeup.name}" in listed, writeup.name
            page = (site / "studies" / f"{writeup.stem}.html").read_text()
            title = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
            assert title and "(issue" not in title[1], writeup.name
    index = (site / "studies.html").read_text()
    assert 'class="studies-table"' in index and "(issue" not in index
    assert "word-break: normal" in (site / "stylesheets" / "extra.css").read_text()


@pytest.mark.slow
def test_headline_figure_on_the_home_page_and_the_quick_study(site: Path) -> None:
    """The quick study's utility-against-epsilon plot, drawn at build time from its committed summary.csv."""
    figure = site / "img" / "quick_test_auroc_true_vs_epsilon.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="img/quick_test_auroc_true_vs_epsilon.png"' in (site / "index.html").read_text()
    assert 'src="../img/quick_test_auroc_true_vs_epsilon.png"' in (site / "studies" / "quick.html").read_text()
    assert (DOCS / "img" / "quick_test_auroc_true_vs_epsilon.png").is_file()  # for reading docs/ on GitHub


def test_headline_figure_copy_is_drawn_from_the_committed_summary() -> None:
    """docs/img/'s copy of the headline figure names the SHA-256 of the summary.csv it was drawn from; after
    `make figures` changes that file, `python docs/gen_config_pages.py --headline` redraws the copy (the site
    build redraws the figure itself whenever the copy is stale)."""
    gen = gen_pages()
    png = (DOCS / gen.HEADLINE).read_bytes()
    assert gen.png_text(png).get(gen.SOURCE_KEY) == gen.source_digest().encode(), \
        "stale: run python docs/gen_config_pages.py --headline"
    redrawn = gen.png_text(gen.with_png_text(png, b"k", b"v"))
    assert redrawn[b"k"] == b"v" and redrawn[gen.SOURCE_KEY] == gen.source_digest().encode()


@pytest.mark.slow
def test_gallery_pages_show_executed_outputs_and_figures(site: Path) -> None:
    """Each tutorial page carries what its code printed and drew when the site was built: its figures as
    images, its printed lines, and no error output."""
    expected = {"quick_study": ("22 runs, 22 finished", 2), "private_run": ("NOT COVERED BY THE RUN", 0),
                "attack_audit": ("eps_lower_relation", 1), "fairness_feedback": ("bias_amplification_true", 3)}
    assert {t.stem for t in TUTORIALS} == set(expected)
    for name, (printed, figures) in expected.items():
        page = (site / "gallery" / f"{name}.html").read_text()
        assert printed in html.unescape(page), name
        assert page.count('src="data:image/png;base64,') >= figures, name
        assert "jp-RenderedText" in page or "output_stream" in page or "jp-OutputArea" in page, name
        assert "Traceback" not in page and "TqdmWarning" not in page, name
        assert (site / "gallery" / f"{name}.py").is_file()  # the script beside its page (include_source)


@pytest.mark.slow
def test_site_loads_nothing_from_the_network(site: Path) -> None:
    """No web fonts or other external assets in the pages (theme `font: false`, no CDN plugin)."""
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
        assert not re.search(r'<(?:script|link)[^>]+(?:src|href)="https?://', text), page


# --- the generated pages -----------------------------------------------------------------------------

def _leaves(data, prefix: str = "") -> list[str]:
    """Dotted paths of the scalar and list values of a loaded yaml mapping."""
    out = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out += _leaves(value, path) if isinstance(value, dict) and value else [path]
    return out


@pytest.mark.parametrize("group", GROUPS)
def test_config_page_has_every_field_of_every_member(group: str, pages: dict) -> None:
    """Each member of configs/GROUP has its section, each of its fields a row (or lies in a row given
    whole, like `data.groups`), and each inline yaml comment is on the page."""
    page = pages[f"config/{group}.md"]
    assert "<!-- config-fields -->" not in page
    assert (DOCS / "config" / f"{group}.md").is_file()
    gen = gen_pages()
    for file in sorted((REPO / "configs" / group).glob("*.yaml")):
        assert f"### `{group}={file.stem}`" in page, file
        member = gen.read_member(file, group)
        rows = [f.path for f in member.fields]
        text = file.read_text()
        package = re.search(r"^# @package (\S+)", text, re.M)
        prefix = {"_global_": ""}.get(package[1], package[1]) if package else group
        loaded = yaml.safe_load(text) or {}
        loaded.pop("defaults", None)
        for leaf in _leaves(loaded):
            path = f"{prefix}.{leaf}" if prefix else leaf
            if path.startswith("hydra.help"):
                continue
            row = next((r for r in rows if path == r or path.startswith(r + ".")), None)
            assert row is not None, f"{file.name}: {path} has no row"
            assert f"| `{row}` |" in page, f"{file.name}: {row}"
        for comment in re.findall(r"^[ \t]*[\w.$]+:[ \t]+\S[^\n]*?[ \t]#[ \t]+(\S.{0,30})", text, re.M):
            assert any(gen.escape(comment)[:20] in gen.escape(f.comment) for f in member.fields), \
                f"{file.name}: comment {comment!r} missing"


def test_top_level_settings_are_listed(pages: dict) -> None:
    page = pages["config/index.md"]
    for key in ("seed", "device", "threads", "skip_finished", "eval.selection_rate", "eval.horizons",
                "eval.origins", "hydra.sweep.dir"):
        assert f"| `{key}` |" in page, key


def test_every_study_and_benchmark_is_on_the_site(pages: dict) -> None:
    """The write-ups become studies/NAME.md with the images they show; every study config is in the
    table; every benchmark script has its section."""
    for writeup in (REPO / "experiments").glob("*.md"):
        if writeup.name != "README.md":
            assert f"studies/{writeup.name}" in pages, writeup
    for image in re.findall(r"\]\(([\w/]+\.png)\)", (REPO / "experiments" / "attacks.md").read_text()):
        assert isinstance(pages[f"studies/{image}"], bytes)
    table = pages["studies.md"]
    for config in (REPO / "configs" / "experiment").glob("*.yaml"):
        assert f"[`experiment={config.stem}`]" in table, config
    benchmarks = pages["benchmarks.md"]
    for script in (REPO / "experiments" / "perf").glob("*.py"):
        assert f"### `{script.name}`" in benchmarks, script


def test_links_that_leave_docs_are_rewritten() -> None:
    """On GitHub a page may link ../experiments/x.md or ../examples/y.py; the site gets a working link to
    the copied write-up, or the repository path as code (mkdocs would fail on a link outside docs/)."""
    gen = gen_pages()
    text = ("[the quick study](../experiments/quick.md#results), [the index](../experiments/README.md), "
            "[`examples/quick_study.py`](../examples/quick_study.py), [a page](temporal.md#models), "
            "[web](https://example.org/a.md)\n```\n[in code](../x.md)\n```")
    out = gen.rewrite_links(text, "api.md", {"quick.md"})
    assert "[the quick study](studies/quick.md#results)" in out
    assert "[the index](studies.md)" in out
    assert "`examples/quick_study.py`" in out and "](../examples" not in out
    assert "[a page](temporal.md#models)" in out and "[web](https://example.org/a.md)" in out
    assert "[in code](../x.md)" in out
    nested = gen.rewrite_links("[q](../../experiments/quick.md) [c](../../configs/privacy/dp_mlp.yaml)",
                               "config/privacy.md", {"quick.md"})
    assert nested == "[q](../studies/quick.md) c (`configs/privacy/dp_mlp.yaml`)"


def test_yaml_comments_are_read_as_the_files_write_them(tmp_path: Path) -> None:
    """The comment parser: continued comments, leading comments, sequences, block scalars, `#` in values."""
    gen = gen_pages()
    text = """# A member.
# @package things
a: 1            # first
                # and more
# about b
b: "x # y"
c:
  d: [1, 2]     # flow
e:              # given whole
  f: 0.1
  g: 0.2
h:
  - one         # the first
  - two
i: |
  text: not a key
"""
    path = tmp_path / "member.yaml"
    path.write_text(text)
    member = gen.read_member(path, "group")
    fields = {f.path: (f.default, f.comment) for f in member.fields}
    assert member.description == ["A member."] and member.package == "things"
    assert fields["things.a"] == ("1", "first and more")
    assert fields["things.b"] == ('"x # y"', "about b")
    assert fields["things.c.d"] == ("[1, 2]", "flow")
    assert fields["things.e"] == ("{f: 0.1, g: 0.2}", "given whole")
    assert fields["things.h"][0] == "[one, two]" and "`one`: the first" in fields["things.h"][1]
    assert "things.text" not in fields and "things.i" in fields


# --- the getting-started commands --------------------------------------------------------------------

def test_getting_started_shows_runnable_commands() -> None:
    """The page's bash blocks hold install commands and gnnrisk commands only, and enough of the latter."""
    commands = bash_commands(GETTING_STARTED)
    others = [c for c in commands if not is_setup(c) and not c.startswith(PROGRAMS)]
    assert not others, f"add these to tests/docs/commands.py (run or SETUP): {others}"
    assert sum(c.startswith("gnnrisk-run") for c in commands) >= 5
    assert any(c.startswith("gnnrisk-report") for c in commands)


@pytest.mark.slow
def test_getting_started_commands_run_at_tiny_sizes(tmp_path: Path) -> None:
    """The page's commands in order, in one folder, at tiny sizes: each run writes metrics.json, the
    report reads the sweep the page made, and the page's Python snippet reads the first run."""
    snippets = iter(fenced_blocks(GETTING_STARTED, "python"))
    for command in bash_commands(GETTING_STARTED):
        if is_setup(command):
            continue
        if command.startswith("gnnrisk-run"):
            folders = run_gnnrisk_run(command, tmp_path)
            for folder in folders:
                metrics = json.loads((folder / "metrics.json").read_text())
                assert metrics["seed"] >= 0, command
        else:
            assert run_gnnrisk_report(command, tmp_path) == 0, command
    assert (tmp_path / "outputs" / "first_sweep" / "report" / "summary.md").is_file()
    staged = json.loads((tmp_path / "runs" / "edgerand-eps8" / "metrics.json").read_text())
    for key in ("epsilon_covers", "explain_algorithm", "attack_lsa_auroc", "eps_lower", "base_rate_gap"):
        assert key in staged, key  # the keys the page says the stages add
    for snippet in snippets:
        with working_directory(tmp_path):
            exec(compile(snippet, str(GETTING_STARTED), "exec"), {})
