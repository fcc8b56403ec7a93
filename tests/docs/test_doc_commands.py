"""Every command the README and the documentation pages show is accepted, so the pages cannot drift from the code.

Commands are read from the pages themselves (tests/docs/commands.py: fenced and indented code lines and
inline `code` spans that start with `gnnrisk-run` or `gnnrisk-report`), each once however many pages show it.
Each `gnnrisk-run` command is checked as the app checks it (Hydra's overrides, then every check a run makes
before training, on a tiny population), for every value of a command-line sweep and for a covering sample of
a study's grid; the single runs also run end to end at tiny sizes in the slow suite. `gnnrisk-report`
commands go through the report's argument parser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from commands import (CONFIGS, REPO, compose_config, is_example, jobs_of, needs_citeseer, normalised,
                      overrides_of, runs_something, shown_commands, tiny_config, tiny_run_key, write_user_files)
from gnnrisk.pipeline import prepare_run, run_experiment
from gnnrisk.preflight import check_overrides
from gnnrisk.report.cli import parser as report_parser

SHOWN = shown_commands()
COMMANDS = [c for c in SHOWN if not is_example(c)]
RUN_COMMANDS = [c for c in COMMANDS if c.startswith("gnnrisk-run")]
REPORT_COMMANDS = [c for c in COMMANDS if c.startswith("gnnrisk-report")]
# The getting-started page's commands run in order in tests/docs/test_docs.py (each run leaves what the next reads).
RUN_IN_ORDER_ELSEWHERE = {"docs/getting_started.md"}


def single_runs() -> list[str]:
    """The single-run commands to run end to end, each job once: commands that differ only in what a tiny
    run ignores (a size above its cap, `threads`, a patience longer than the capped epochs, the run folder)
    run the same job."""
    chosen: dict[tuple[str, ...], str] = {}
    for command in RUN_COMMANDS:
        single = " -m " not in f" {command} " and runs_something(command)
        if single and not set(SHOWN[command]) <= RUN_IN_ORDER_ELSEWHERE:
            chosen.setdefault(tiny_run_key(command), command)
    return list(chosen.values())


SINGLE_RUNS = single_runs()
RUN_END_TO_END = {tiny_run_key(c) for c in SINGLE_RUNS}  # their jobs are prepared by running them
PREPARED: set[str] = set()  # the tiny jobs prepared so far in this process


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The edge-list example's `ties.csv` and `people.csv`."""
    return write_user_files(tmp_path_factory.mktemp("user_files"))


def test_pages_show_commands() -> None:
    """The extraction finds the pages' commands (a broken extraction would make these tests vacuous)."""
    assert len(RUN_COMMANDS) >= 60 and len(REPORT_COMMANDS) >= 5
    assert len(SINGLE_RUNS) >= 40
    by_page = {page for pages in SHOWN.values() for page in pages}
    for page in ("README.md", "docs/index.md", "docs/config/privacy.md", "docs/config/attack.md", "docs/temporal.md"):
        assert page in by_page, page


def test_readme_keeps_the_two_commands() -> None:
    """The README contract: on a fresh machine `make run` runs the main job and `make test` the tests (CI's
    command), both from the README's own code block."""
    readme = (REPO / "README.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.S))
    assert re.search(r"^make run\b", blocks, re.M) and re.search(r"^make test\b", blocks, re.M)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run: .*\n\t.*gnnrisk-run -m experiment=quick$", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "## Responsible use" in readme
    links = re.findall(r"\]\(([^)#\s]+)", readme)
    for target in links:
        if not re.match(r"^[a-z]+:", target):
            path = (REPO / target).resolve()
            assert REPO in path.parents and path.exists(), f"README links {target}: not a file of the repository"


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_run_command_is_accepted(command: str, user_files: Path) -> None:
    """Hydra accepts it and every job passes every check made before training (a single run whose tiny job
    `test_single_run_command_runs_at_tiny_size` runs end to end is prepared there, checks included)."""
    overrides, multirun = overrides_of(command, user_files)
    if needs_citeseer(overrides):
        pytest.skip("CiteSeer raw files not on this machine")
    check_overrides(overrides, CONFIGS)
    if not multirun and tiny_run_key(command) in RUN_END_TO_END:
        return
    for job in jobs_of(overrides, multirun):
        cfg = tiny_config(job)
        key = OmegaConf.to_yaml(cfg)  # the same job shown by several commands (e.g. another launcher) is prepared once
        if key not in PREPARED:
            prepare_run(cfg)
            PREPARED.add(key)


@pytest.mark.parametrize("command", REPORT_COMMANDS)
def test_report_command_parses(command: str) -> None:
    """The report's parser accepts every option a page shows."""
    report_parser().parse_args(list(normalised(command)[1:]))


@pytest.mark.slow
@pytest.mark.parametrize("command", SINGLE_RUNS)
def test_single_run_command_runs_at_tiny_size(command: str, user_files: Path, tmp_path: Path) -> None:
    """Each single-run command runs end to end on a tiny population and writes metrics.json."""
    overrides, _ = overrides_of(command, user_files)
    if needs_citeseer(overrides):
        pytest.skip("CiteSeer raw files not on this machine")
    metrics = run_experiment(tiny_config(overrides), tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").exists() and metrics["seed"] >= 0


def test_a_placeholder_command_is_not_checked() -> None:
    """Forms with placeholders are recognised, real commands are not mistaken for them."""
    assert is_example("gnnrisk-report SWEEP_DIR --html") and is_example("gnnrisk-run -m ...")
    assert is_example("gnnrisk-run privacy=dpsgd_node privacy.epsilon=E seed=S") and is_example("gnnrisk-report")
    assert not is_example("gnnrisk-run privacy=gap_edp privacy.epsilon=4")
    assert not runs_something("gnnrisk-run --cfg job model=gat")
    assert overrides_of("gnnrisk-run --cfg job model=gat", REPO) == (["model=gat"], False)
    assert compose_config(["model=gat"]).model.name == "gat"
    assert tiny_run_key("gnnrisk-run explain=saliency train.epochs=100 train.patience=20 threads=1") == \
        tiny_run_key("gnnrisk-run explain=saliency")
    assert tiny_run_key("gnnrisk-run train.epochs=1") != tiny_run_key("gnnrisk-run")
