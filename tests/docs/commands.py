"""The commands the README and the documentation pages show, and how the tests check and run them.

One way to do it, used by tests/docs/test_doc_commands.py (every page's commands) and tests/docs/test_docs.py
(the getting-started page in order): a page's command lines are read from its code (`page_commands`); a
command becomes its overrides (`overrides_of`), a sweep its jobs (`jobs_of`: every value of a command-line
sweep, a covering sample of a study's grid), and a job the config the app composes with its sizes capped
(`tiny_config`), checked by `prepare_run` or run in-process by `run_experiment`.
"""

from __future__ import annotations

import os
import re
import shlex
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from gnnrisk.pipeline import run_experiment
from gnnrisk.preflight import single_overrides
from gnnrisk.presets import TINY_CAPS, apply_preset
from gnnrisk.sweeper import grid_jobs

REPO = Path(__file__).resolve().parents[2]
CONFIGS = str(REPO / "configs")
CITESEER_ROOT = REPO.parent / "shared" / "data" / "planetoid"
PROGRAMS = ("gnnrisk-run", "gnnrisk-report")
# Commands a page shows for installing (or for the whole test suite and the full main job): not run here.
SETUP = ("make ", "python3 -m venv ", ". .venv/bin/activate")
# Hydra's own flags: `--cfg job` prints the composed config and runs nothing (its overrides are still checked).
HYDRA_FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--info", "-i")
HYDRA_FLAGS = ("--resolve",)
NOT_RUNNING = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help")
# Every command is checked (and run) at `preset=tiny`: its sizes capped so that it takes seconds (gnnrisk/presets.py).
TINY = TINY_CAPS


# --- reading a page ------------------------------------------------------------------------------------

def pages() -> list[Path]:
    """The pages whose commands are checked: the README and every hand-written page of the site."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def page_commands(page: Path) -> list[str]:
    """Every `gnnrisk-run` / `gnnrisk-report` command of a page: the lines of its fenced and indented code
    (continuation lines joined, a `.venv/bin/` prefix dropped) and its inline code spans, in order, once each."""
    found: list[str] = []
    fenced, pending = False, ""
    for line in page.read_text().splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced, pending = not fenced, ""
            continue
        if fenced or line.startswith("    "):
            text = pending + line.strip()
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            text = re.sub(r"^\.venv/bin/", "", text)
            if text.startswith(PROGRAMS):
                found.append(text)
        else:
            found += [span for span in re.findall(r"`([^`]+)`", line) if span.startswith(PROGRAMS)]
    return list(dict.fromkeys(found))


def normalised(command: str) -> tuple[str, ...]:
    """A command as its arguments (spacing and trailing comment aside): two pages show the same command
    when these are equal."""
    return tuple(shlex.split(command, comments=True))


def shown_commands() -> dict[str, list[str]]:
    """Every command the README and the docs show, once (as first written), with the pages that show it."""
    first: dict[tuple[str, ...], str] = {}
    where: dict[str, list[str]] = {}
    for page in pages():
        name = page.relative_to(REPO).as_posix()
        for command in page_commands(page):
            key = normalised(command)
            shown = first.setdefault(key, command)
            if name not in where.setdefault(shown, []):
                where[shown].append(name)
    return where


# The plug-in tutorial's commands (docs/plugins.md) need the example package installed: its own tests install
# it and run them (tests/plugins/test_example_plugin.py), these do not.
PLUGIN_MEMBERS = ("privacy=rr_edges", "data=blocks", "model=appnp", "confidence_gap")


def is_example(command: str) -> bool:
    """A form with placeholders (SWEEP_DIR, =E, `...`), a bare program name mentioned in prose, or a command
    of the example plug-in (PLUGIN_MEMBERS)."""
    args = normalised(command)
    if any(member in command for member in PLUGIN_MEMBERS):
        return True
    if len(args) == 1 or "..." in args:
        return True
    return any(re.fullmatch(r"[A-Z][A-Z_]*", a.partition("=")[2] or a) for a in args[1:])


def runs_something(command: str) -> bool:
    """Whether the command trains (not `--cfg job`, `--help`, ...)."""
    return not any(a in NOT_RUNNING for a in normalised(command))


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
    """An install command (or `make test` / `make run`): shown, not run by the tests."""
    return command.startswith(SETUP)


# --- from a command to its jobs ------------------------------------------------------------------------

def write_user_files(folder: Path) -> Path:
    """The `ties.csv` and `people.csv` of the edge-list examples: the columns they name."""
    (folder / "ties.csv").write_text("source,target\n" + "".join(f"u{i},u{(i + 1) % 30}\n" for i in range(30))
                                     + "".join(f"u{i},u{(i + 7) % 30}\n" for i in range(30)))
    (folder / "people.csv").write_text("id,name,email,sex,age,label\n" + "".join(
        f"u{i},Name {i},u{i}@example.org,{'f' if i % 3 else 'm'},{20 + i},{i % 2}\n" for i in range(30)))
    return folder


def overrides_of(command: str, files: Path) -> tuple[list[str], bool]:
    """The command's overrides (placeholder paths made real, Hydra's flags left out) and whether it is a multirun."""
    args = list(normalised(command)[1:])
    multirun = "-m" in args or "--multirun" in args
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in HYDRA_FLAGS_WITH_VALUE:
            skip = True
            continue
        if a in ("-m", "--multirun") or a in HYDRA_FLAGS or a in NOT_RUNNING:
            continue
        a = a.replace("data.root=/path/to/planetoid", f"data.root={CITESEER_ROOT}")
        a = re.sub(r"^(data\.(?:edges|nodes)_path)=(\w+\.csv)$", lambda m: f"{m[1]}={files / m[2]}", a)
        out.append(a)
    return out, multirun


def tiny_run_key(command: str) -> tuple[str, ...]:
    """What a command runs at tiny size, as its sorted overrides without those that change nothing there:
    a size at or above its cap (it is capped anyway), `threads` (speed only), a `train.patience` of at
    least the capped epochs (early stopping cannot trigger) and Hydra's own settings (folders)."""
    caps = dict(TINY)
    kept = []
    for override in overrides_of(command, REPO)[0]:
        key, _, value = override.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if key.startswith("hydra.") or key == "threads":
            continue
        if number is not None and ((key in caps and number >= caps[key])
                                   or (key == "train.patience" and number >= caps["train.epochs"])):
            continue
        kept.append(override)
    return tuple(sorted(kept))


def needs_citeseer(overrides: list[str]) -> bool:
    """Whether the command reads the CiteSeer raw files (absent on some machines)."""
    return any(o.startswith("data.root=") for o in overrides) and not CITESEER_ROOT.is_dir()


def compose_config(overrides: list[str]) -> DictConfig:
    """The config the app composes for these overrides, Hydra's node included."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def tiny_config(overrides: list[str]) -> DictConfig:
    """The job's composed config at `preset=tiny` (applied as the app does), on the CPU with one thread."""
    cfg = compose_config([*overrides, "preset=tiny"])
    with open_dict(cfg):
        del cfg["hydra"]  # as the app's job config: Hydra's own node is not part of a run's config
        cfg.device = "cpu"
        cfg.threads = 1  # a tiny run gains nothing from more; on a shared machine more threads cost a lot
    return apply_preset(cfg)


def covering_jobs(jobs: list[list[str]]) -> list[list[str]]:
    """A few jobs of a grid that together use every override value of it at least once."""
    chosen, seen = [], set()
    for job in jobs:
        if not set(job) <= seen:
            chosen.append(job)
            seen |= set(job)
    return chosen


def _is_grid_study(cfg: DictConfig) -> bool:
    return str(cfg.hydra.sweeper.get("_target_", "")).endswith(".GridSweeper")


def jobs_of(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The jobs to check: every sweep value once, and for a grid-sweeper study a covering sample of its grid."""
    jobs = single_overrides(overrides) if multirun else [overrides]
    cfg = compose_config(jobs[0])
    if multirun and _is_grid_study(cfg):
        sweeper = cfg.hydra.sweeper
        params = OmegaConf.to_container(sweeper.params) if sweeper.get("params") else None
        blocks = OmegaConf.to_container(sweeper.blocks) if sweeper.get("blocks") else None
        jobs = covering_jobs(grid_jobs(params, blocks, overrides))
    return jobs


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs a `gnnrisk-run -m OVERRIDES` run at tiny size makes: a command-line grid in full, a study's
    grid by its covering sample (a study has tens of runs)."""
    jobs = jobs_of(overrides, True)
    if _is_grid_study(compose_config(jobs[0])):
        return jobs
    return grid_jobs(None, None, overrides)


# --- running -------------------------------------------------------------------------------------------

def _value(overrides: list[str], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(key + "=")]
    return values[-1] if values else None


def _job_dirname(job: list[str]) -> str:
    """A run folder name from a job's overrides, as Hydra's `override_dirname` (sorted, paths left out)."""
    from gnnrisk.results import run_dirname

    kept = sorted(o for o in job if not o.startswith(("hydra.", "experiment=")))
    return run_dirname(",".join(kept) or "defaults")


def run_gnnrisk_run(command: str, cwd: Path) -> list[Path]:
    """Run a `gnnrisk-run` command at tiny sizes in `cwd`; the run folders it wrote."""
    with working_directory(cwd):
        overrides, multirun = overrides_of(command, cwd)
        if not multirun:
            run_dir = cwd / (_value(overrides, "hydra.run.dir") or "runs/default")
            run_experiment(tiny_config(overrides), run_dir)
            return [run_dir]
        jobs = sweep_jobs(overrides)
        sweep_dir = _value(overrides, "hydra.sweep.dir")
        if sweep_dir is None:  # the study's own sweep folder
            sweep_dir = OmegaConf.select(compose_config(jobs[0]), "hydra.sweep.dir")
        folders = []
        for job in jobs:
            run_dir = cwd / sweep_dir / _job_dirname(job)
            run_experiment(tiny_config(job), run_dir)
            folders.append(run_dir)
        return folders


def run_gnnrisk_report(command: str, cwd: Path) -> int:
    """Run a `gnnrisk-report` command in `cwd` (in-process, through its console-script entry point)."""
    from gnnrisk.report.cli import main

    with working_directory(cwd):
        return main(list(normalised(command)[1:]))


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run the block in `path`, then go back."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
