"""Every command the README shows is accepted, so the README cannot drift from the code.

Commands are read from the README itself: fenced and indented code lines and inline `code` spans that
start with `gnnrisk-run` or `gnnrisk-report`. Each `gnnrisk-run` command is checked as the app checks it
(Hydra's overrides, then every check a run makes before training, on a tiny population), for every value
of a command-line sweep and for a covering sample of an experiment's grid; the single runs also run end
to end at tiny sizes in the slow suite. `gnnrisk-report` commands go through the report's argument parser.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from gnnrisk.pipeline import prepare_run, run_experiment
from gnnrisk.preflight import check_overrides, single_overrides
from gnnrisk.report.cli import parser as report_parser
from gnnrisk.sweeper import grid_jobs

REPO = Path(__file__).resolve().parents[2]
CONFIGS = str(REPO / "configs")
CITESEER_ROOT = REPO.parent / "shared" / "data" / "planetoid"
# Sizes capped in the composed config, so that checking (and running) takes seconds: (key, at most).
TINY = [("train.epochs", 2), ("data.num_nodes", 300), ("data.num_communities", 6), ("data.base_nodes", 60),
        ("data.num_motifs", 10), ("explain.num_nodes", 2), ("explain.epochs", 2), ("explain.train_nodes", 4),
        ("explain.n_steps", 4), ("audit.rounds", 2), ("audit.epochs", 2), ("attack.lsa.num_pairs", 100),
        ("attack.linkteller.num_nodes", 40), ("attack.adjacency.num_nodes", 60), ("attack.canary.num_canaries", 20),
        ("attack.explain_sim.num_pairs", 20), ("privacy.epochs", 2), ("privacy.encoder_epochs", 2),
        ("privacy.classifier_epochs", 2), ("privacy.batch_size", 64)]
PROGRAMS = ("gnnrisk-run", "gnnrisk-report")


def readme_commands() -> list[str]:
    """Every `gnnrisk-run` / `gnnrisk-report` command line in the README, continuation lines joined."""
    lines = (REPO / "README.md").read_text().splitlines()
    found: list[str] = []
    fenced, pending = False, ""
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
            continue
        code = fenced or line.startswith("    ")
        if code:
            text = pending + line.strip()
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            text = re.sub(r"^(\.venv/bin/)", "", text)
            if text.startswith(PROGRAMS):
                found.append(text)
        else:
            found += [span for span in re.findall(r"`([^`]+)`", line) if span.startswith(PROGRAMS)]
    return list(dict.fromkeys(found))


def _is_example(command: str) -> bool:
    """A form with placeholders (SWEEP_DIR, =E, =S), or a bare `gnnrisk-report` mentioned in prose."""
    args = shlex.split(command, comments=True)
    if args == ["gnnrisk-report"]:
        return True
    return any(re.fullmatch(r"[A-Z][A-Z_]*", a.partition("=")[2] or a) for a in args[1:])


COMMANDS = [c for c in readme_commands() if not _is_example(c)]
RUN_COMMANDS = [c for c in COMMANDS if c.startswith("gnnrisk-run")]
REPORT_COMMANDS = [c for c in COMMANDS if c.startswith("gnnrisk-report")]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's `ties.csv` and `people.csv`: the columns its edge-list example names."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "ties.csv").write_text("source,target\n" + "".join(f"u{i},u{(i + 1) % 30}\n" for i in range(30))
                                     + "".join(f"u{i},u{(i + 7) % 30}\n" for i in range(30)))
    (folder / "people.csv").write_text("id,name,email,sex,age,label\n" + "".join(
        f"u{i},Name {i},u{i}@example.org,{'f' if i % 3 else 'm'},{20 + i},{i % 2}\n" for i in range(30)))
    return folder


def overrides_of(command: str, files: Path) -> tuple[list[str], bool]:
    """The command's overrides (placeholder paths made real) and whether it is a multirun."""
    args = shlex.split(command, comments=True)[1:]
    multirun = "-m" in args or "--multirun" in args
    args = [a for a in args if a not in ("-m", "--multirun")]
    out = []
    for a in args:
        a = a.replace("data.root=/path/to/planetoid", f"data.root={CITESEER_ROOT}")
        a = re.sub(r"^(data\.(?:edges|nodes)_path)=(\w+\.csv)$", lambda m: f"{m[1]}={files / m[2]}", a)
        out.append(a)
    return out, multirun


def _compose(overrides: list[str]):
    """The config the app composes for these overrides."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _tiny(overrides: list[str]):
    """The job's composed config with its sizes capped (and the CPU device), everything else as given."""
    cfg = _compose(overrides)
    with open_dict(cfg):
        del cfg["hydra"]  # as the app's job config: Hydra's own node is not part of a run's config
        cfg.device = "cpu"
        for key, cap in TINY:
            value = OmegaConf.select(cfg, key)
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                OmegaConf.update(cfg, key, cap)
        if cfg.explain.get("name", "none") != "none":  # any node of a barely trained model, either class
            cfg.explain.split = "all"
            cfg.explain.classes = [0, 1] if cfg.data.name == "synthetic" else None
    return cfg


def covering_jobs(jobs: list[list[str]]) -> list[list[str]]:
    """A few jobs of a grid that together use every override value of it at least once."""
    chosen, seen = [], set()
    for job in jobs:
        if not set(job) <= seen:
            chosen.append(job)
            seen |= set(job)
    return chosen


def jobs_of(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The jobs to check: every sweep value once, and for a grid-sweeper experiment a covering sample."""
    jobs = single_overrides(overrides) if multirun else [overrides]
    cfg = _compose(jobs[0])
    sweeper = cfg.hydra.sweeper
    if multirun and str(sweeper.get("_target_", "")).endswith(".GridSweeper"):
        params = OmegaConf.to_container(sweeper.params) if sweeper.get("params") else None
        blocks = OmegaConf.to_container(sweeper.blocks) if sweeper.get("blocks") else None
        jobs = covering_jobs(grid_jobs(params, blocks, overrides))
    return jobs


def test_readme_shows_commands() -> None:
    """The extraction finds the README's commands (a broken extraction would make the test vacuous)."""
    assert len(RUN_COMMANDS) >= 40 and len(REPORT_COMMANDS) >= 3
    assert "gnnrisk-run -m experiment=quick" in RUN_COMMANDS


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_run_command_is_accepted(command: str, user_files: Path) -> None:
    """Hydra accepts it and every job passes every check made before training."""
    overrides, multirun = overrides_of(command, user_files)
    if any("data.root=" in o for o in overrides) and not CITESEER_ROOT.is_dir():
        pytest.skip("CiteSeer raw files not on this machine")
    check_overrides(overrides, CONFIGS)
    for job in jobs_of(overrides, multirun):
        prepare_run(_tiny(job))


@pytest.mark.parametrize("command", REPORT_COMMANDS)
def test_report_command_parses(command: str) -> None:
    """The report's parser accepts every option the README shows."""
    report_parser().parse_args(shlex.split(command, comments=True)[1:])


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in RUN_COMMANDS if " -m " not in f" {c} "])
def test_single_run_command_runs_at_tiny_size(command: str, user_files: Path, tmp_path: Path) -> None:
    """Each single-run command runs end to end on a tiny population and writes metrics.json."""
    overrides, _ = overrides_of(command, user_files)
    if any("data.root=" in o for o in overrides) and not CITESEER_ROOT.is_dir():
        pytest.skip("CiteSeer raw files not on this machine")
    metrics = run_experiment(_tiny(overrides), tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").exists() and metrics["seed"] >= 0
