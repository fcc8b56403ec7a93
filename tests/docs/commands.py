"""The shell commands of a documentation page's fenced ```bash blocks, run at tiny sizes.

The README's commands are already checked and run that way by tests/foundation/test_readme_commands.py:
a command becomes its overrides (`overrides_of`), a sweep its jobs (`jobs_of`), and a job the config the
app composes with its sizes capped (`_tiny`), run in-process by `run_experiment`. That module is not
importable as `tests.foundation...` (the test folders are not packages), so it is loaded from its file
here, under a name of its own, and its helpers are reused as they are.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
README_TEST = REPO / "tests" / "foundation" / "test_readme_commands.py"
PROGRAMS = ("gnnrisk-run", "gnnrisk-report")
# Commands a page shows for installing (or for the whole test suite and the full main job): not run here.
SETUP = ("make ", "python3 -m venv ", ". .venv/bin/activate")


def readme_helpers() -> ModuleType:
    """tests/foundation/test_readme_commands.py as a module (`overrides_of`, `jobs_of`, `_tiny`, ...)."""
    name = "_docs_readme_command_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, README_TEST)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def fenced_blocks(page: Path, language: str) -> list[str]:
    """The contents of the page's ```LANGUAGE blocks, in order."""
    blocks, current = [], None
    for line in page.read_text().splitlines():
        if current is None and line.strip() == f"```{language}":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def bash_commands(page: Path) -> list[str]:
    """Every command line of the page's ```bash blocks (continuation lines joined), in order."""
    commands, pending = [], ""
    for block in fenced_blocks(page, "bash"):
        for line in block.splitlines():
            text = pending + line.strip()
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            if text and not text.startswith("#"):
                commands.append(text)
    return commands


def is_setup(command: str) -> bool:
    return command.startswith(SETUP)


def _value(overrides: list[str], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(key + "=")]
    return values[-1] if values else None


def _job_dirname(job: list[str]) -> str:
    """A run folder name from a job's overrides, as Hydra's `override_dirname` (sorted, paths left out)."""
    from gnnrisk.results import run_dirname

    kept = sorted(o for o in job if not o.startswith(("hydra.", "experiment=")))
    return run_dirname(",".join(kept) or "defaults")


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of `gnnrisk-run -m OVERRIDES`: a command-line grid in full; a study's grid by a covering
    sample (every value of it once, as the README test checks them), since a study has tens of runs."""
    helpers = readme_helpers()
    jobs = helpers.jobs_of(overrides, True)
    sweeper = helpers._compose(jobs[0]).hydra.sweeper
    if str(sweeper.get("_target_", "")).endswith(".GridSweeper"):
        return jobs
    from gnnrisk.sweeper import grid_jobs

    return grid_jobs(None, None, overrides)


def run_gnnrisk_run(command: str, cwd: Path) -> list[Path]:
    """Run a `gnnrisk-run` command at tiny sizes in `cwd`; the run folders it wrote."""
    with working_directory(cwd):
        return _run(command, cwd)


def _run(command: str, cwd: Path) -> list[Path]:
    helpers = readme_helpers()
    overrides, multirun = helpers.overrides_of(command, cwd)
    if not multirun:
        run_dir = cwd / (_value(overrides, "hydra.run.dir") or "runs/default")
        helpers.run_experiment(helpers._tiny(overrides), run_dir)
        return [run_dir]
    jobs = sweep_jobs(overrides)
    sweep_dir = _value(overrides, "hydra.sweep.dir")
    if sweep_dir is None:  # the study's own sweep folder
        sweep_dir = OmegaConf.select(helpers._compose(jobs[0]), "hydra.sweep.dir")
    folders = []
    for job in jobs:
        run_dir = cwd / sweep_dir / _job_dirname(job)
        helpers.run_experiment(helpers._tiny(job), run_dir)
        folders.append(run_dir)
    return folders


def run_gnnrisk_report(command: str, cwd: Path) -> int:
    """Run a `gnnrisk-report` command in `cwd` (in-process, through its console-script entry point)."""
    from gnnrisk.report.cli import main

    with working_directory(cwd):
        return main(shlex.split(command, comments=True)[1:])


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
