"""One version in every release file and command; the built wheel and sdist hold the configs and run installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

import gnnrisk

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the project venv's scripts (gnnrisk-run, gnnrisk-report)
CFF_KEYS = ("cff-version", "message", "title", "authors", "version", "date-released", "license", "abstract",
            "keywords")


def project_version() -> str:
    """The version pyproject.toml declares."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def citation() -> dict:
    """CITATION.cff, parsed."""
    return yaml.safe_load((REPO / "CITATION.cff").read_text())


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A command's result, without a PYTHONPATH that could put the checkout on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def copy_sources(dest: Path) -> None:
    """Copy the checkout as a clone with its uncommitted work has it (files git does not ignore), links kept."""
    listed = run("git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in filter(None, listed.stdout.split("\0")):
        source, copy = REPO / name, dest / name
        if not (source.exists() or source.is_symlink()):  # deleted in the working tree
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, copy)


def test_one_version_everywhere() -> None:
    """The installed version is pyproject's, CITATION.cff's, the changelog's and the BibTeX entries'."""
    version = project_version()
    assert gnnrisk.__version__ == version, "the installed metadata is stale: reinstall (pip install -e .)"
    cff = citation()
    assert str(cff["version"]) == version
    entry = re.search(rf"^## \[{re.escape(version)}\] - (\d{{4}}-\d{{2}}-\d{{2}})$",
                      (REPO / "CHANGELOG.md").read_text(), re.M)
    assert entry is not None, f"CHANGELOG.md has no entry for {version}"
    assert entry[1] == str(cff["date-released"])
    for page in ("README.md", "docs/citing.md"):
        assert re.findall(r"version\s*=\s*\{([^}]*)\}", (REPO / page).read_text()) == [version], page


def test_citation_and_license() -> None:
    """CITATION.cff has the keys of CFF 1.2.0 (and those this project fills); LICENSE is the MIT licence."""
    cff = citation()
    assert cff["cff-version"] == "1.2.0"
    assert not [key for key in CFF_KEYS if not cff.get(key)]
    assert all(author.get("name") or author.get("family-names") for author in cff["authors"])
    assert cff["license"] == "MIT"
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


@pytest.mark.slow
@pytest.mark.parametrize("command", [["gnnrisk-run"], ["gnnrisk-report"], ["-m", "gnnrisk"]])
def test_version_flag(command: list[str], tmp_path: Path) -> None:
    """`gnnrisk-run`, `gnnrisk-report` and `python -m gnnrisk` print `gnnrisk VERSION` for --version."""
    program = [sys.executable, *command] if command[0] == "-m" else [BIN / command[0]]
    proc = run(*program, "--version", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, f"gnnrisk {gnnrisk.__version__}\n"), proc.stderr


@pytest.mark.slow
def test_built_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    """The wheel and sdist hold every config (gnnrisk/conf is a symlink to configs/); the installed wheel runs."""
    version = project_version()
    dist, sources = tmp_path / "dist", tmp_path / "src"
    # Built from a copy, since setuptools writes gnnrisk.egg-info into the tree it builds (in the checkout, that
    # metadata would shadow the installed version's for `python -m ...` run there once the version changes).
    # --no-isolation: the venv's setuptools and build (the dev extra), so nothing is downloaded. The wheel is
    # built from the sdist, so a file missing from the sdist is missing from the wheel too.
    copy_sources(sources)
    proc = run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, sources, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheel, sdist = dist / f"gnnrisk-{version}-py3-none-any.whl", dist / f"gnnrisk-{version}.tar.gz"
    configs = sorted(p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml"))
    assert "config.yaml" in configs and len(configs) > 50

    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [c for c in configs if f"gnnrisk/conf/{c}" not in names]
    assert "hydra_plugins/gnnrisk_sweeper/__init__.py" in names
    assert f"gnnrisk-{version}.dist-info/licenses/LICENSE" in names
    with tarfile.open(sdist) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile()}  # real files, not a symlink to a folder
    root = f"gnnrisk-{version}"
    assert not [c for c in configs if f"{root}/gnnrisk/conf/{c}" not in files]
    assert f"{root}/LICENSE" in files

    # A fresh venv gets the wheel alone (--no-deps); its dependencies come from the project venv through a
    # .pth file naming the project venv's site-packages, so torch and the rest are not downloaded again. A
    # path line in a .pth file only appends that folder to sys.path (the .pth files inside it, such as the
    # editable install's, are not run), and the new venv's own site-packages comes first: the gnnrisk and
    # hydra_plugins imported are the wheel's.
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    project_site = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "gnnrisk-project-venv.pth").write_text("".join(f"{p}\n" for p in project_site))
    proc = run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel)
    assert proc.returncode == 0, proc.stderr

    code = "import gnnrisk, hydra_plugins.gnnrisk_sweeper as s; print(gnnrisk.__file__); print(s.__file__)"
    proc = run(python, "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all(Path(f).resolve().is_relative_to(site.resolve()) for f in proc.stdout.split()), proc.stdout
    proc = run(venv / "bin" / "gnnrisk-run", "--version", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, f"gnnrisk {version}\n"), proc.stderr
    proc = run(venv / "bin" / "gnnrisk-run", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "gap_edp" in proc.stdout, proc.stderr  # groups read from the installed configs
    proc = run(venv / "bin" / "gnnrisk-run", "--cfg", "job", "privacy=gap_edp", "model=sage", cwd=tmp_path)
    assert proc.returncode == 0 and "gap_edp" in proc.stdout, proc.stderr  # a config composed from them
