"""The bad-input battery, part two: output folders and sweeps, refused before Hydra writes anything.

Run folders (`hydra.run.dir`, `gnnrisk.run(run_dir=...)`) whose names the file system cannot hold, or that
hold another config's finished run; sweeps whose grid (`hydra.sweeper.params/blocks`) or sweeper settings
Hydra would refuse only after writing multirun.yaml. Each refusal: exit code 2, one stderr line naming the
field, no traceback, nothing written (no sweep folder, the finished run as it was). And the inputs that
must keep working: the same config re-run into its own folder, a non-ASCII folder, the documented minimum
population, a field only another mode reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gnnrisk.errors import ConfigError
from gnnrisk.folders import check_run_folder
from gnnrisk.preflight import covering_jobs, quote_values

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
TINY = ["train.epochs=2", "device=cpu", "model.hidden_channels=8", "data.num_nodes=300", "data.num_communities=6"]
LONG = "a" * 300  # one folder name over the file system's 255-byte limit
DEEP = "/".join(["d" * 200] * 3)  # names within the limit; with mlflow.db, a path SQLite cannot open (512 bytes)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`gnnrisk-run` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "gnnrisk", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _refused(proc: subprocess.CompletedProcess, field: str) -> str:
    """The one stderr line of a refusal (exit 2, no traceback) that starts with `field`."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"gnnrisk: error: {field}"), lines
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


def _finished_run(folder: Path, overrides: list[str]) -> dict[str, str]:
    """A finished run folder made with `overrides`; its files and their contents."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "metrics.json").write_text(json.dumps({"test_auroc": 0.7, "seed": 1}))
    (folder / "config.yaml").write_text("seed: 1\n")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> text)."""
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


RUN_FOLDER_CASES = [
    ([f"hydra.run.dir={{tmp}}/{LONG}"], "hydra.run.dir=", "has 300 bytes"),
    ([f"hydra.run.dir={{tmp}}/{DEEP}", "logger=mlflow"], "hydra.run.dir=", "SQLite"),  # the store inside the run
    (["hydra.run.dir={tmp}/run", "logger=mlflow", f"logger.dir={{tmp}}/{DEEP}"], "logger.dir=", "SQLite"),
    (["hydra.run.dir={tmp}/run", "logger=csv", f"logger.dir={{tmp}}/{LONG}"], "logger.dir=", "has 300 bytes"),
]


@pytest.mark.parametrize("overrides,field,reason", RUN_FOLDER_CASES, ids=["run-name", "run-sqlite", "logger-sqlite",
                                                                          "logger-name"])
def test_run_folder_refused_in_one_line(overrides: list[str], field: str, reason: str, tmp_path: Path) -> None:
    """A folder name over the limit, or a tracking store SQLite cannot open: one line, nothing created."""
    proc = _cli(*TINY, *[o.replace("{tmp}", str(tmp_path)) for o in overrides], cwd=tmp_path)
    assert reason in _refused(proc, field)
    assert list(tmp_path.iterdir()) == []


def test_finished_run_of_another_config_is_kept(tmp_path: Path) -> None:
    """A run into a folder holding another config's finished run is refused; that run stays as it was."""
    folder = tmp_path / "run"
    before = _finished_run(folder, ["seed=1"])
    line = _refused(_cli(*TINY, "seed=2", f"hydra.run.dir={folder}", cwd=tmp_path), "hydra.run.dir=")
    assert "holds a finished run of another config (seed=1" in line
    assert _contents(folder) == before


def test_api_run_folder_refused_before_any_write(tmp_path: Path) -> None:
    """`gnnrisk.run(run_dir=...)`: the same refusals as ConfigErrors naming run_dir (no OSError, nothing written)."""
    import gnnrisk

    folder = tmp_path / "run"
    before = _finished_run(folder, ["seed=1"])
    with pytest.raises(ConfigError, match=r"^run_dir=.* holds a finished run of another config"):
        gnnrisk.run([*TINY, "seed=2"], run_dir=folder)
    assert _contents(folder) == before
    with pytest.raises(ConfigError, match=r"^run_dir=.* has 300 bytes"):
        gnnrisk.run(TINY, run_dir=tmp_path / LONG)
    with pytest.raises(ConfigError, match=r"^run_dir=.* SQLite"):
        gnnrisk.run([*TINY, "logger=mlflow"], run_dir=tmp_path / DEEP)
    with pytest.raises(ConfigError, match=r"^sweep_dir=.* has 300 bytes"):
        gnnrisk.sweep({"seed": [0, 1]}, sweep_dir=tmp_path / LONG, overrides=TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_same_config_may_rerun_into_its_own_folder(tmp_path: Path) -> None:
    """The same overrides (in any order) re-run into their folder; a failed run's folder is re-usable too."""
    folder = tmp_path / "run"
    _finished_run(folder, ["seed=1", "model=sage"])
    assert check_run_folder("hydra.run.dir", str(folder), ["model=sage", "seed=1"]) == folder
    (folder / "metrics.json").unlink()
    assert check_run_folder("hydra.run.dir", str(folder), ["seed=3"]) == folder


SWEEP_CASES = [
    (["hydra/sweeper=grid", "hydra.sweeper.blocks=[{model: nope}]"], "model='nope' is not allowed: expected one of"),
    (["hydra/sweeper=grid", "hydra.sweeper.blocks=[{model.nope: 1}]"], "model.nope="),
    (["hydra/sweeper=grid", "hydra.sweeper.params={trian.epochs: 1}"], "trian.epochs="),
    (["experiment=quick", "hydra/sweeper=optuna"], "hydra.sweeper.blocks="),
    (["experiment=progap", "data=synthetic"], "data.dataset="),   # a grid block's key the chosen data lacks
    (["experiment=tune", "hydra.sweeper.sampler._target_=optuna.samplers.GridSampler"],
     "hydra.sweeper.sampler='optuna.samplers.GridSampler' is not allowed: an exhaustive grid"),
    (["seed=0,1", f"hydra.sweep.dir={{tmp}}/{LONG}"], "hydra.sweep.dir="),
]


@pytest.mark.slow
@pytest.mark.parametrize("overrides,start", SWEEP_CASES, ids=[" ".join(o)[:60] for o, _ in SWEEP_CASES])
def test_sweep_refused_before_hydra_writes(overrides: list[str], start: str, tmp_path: Path) -> None:
    """Grid values and sweeper settings Hydra refuses after writing multirun.yaml: one line, no sweep folder."""
    sweep = tmp_path / "sweep"
    args = [o.replace("{tmp}", str(tmp_path)) for o in overrides]
    if not any(a.startswith("hydra.sweep.dir=") for a in args):
        args.append(f"hydra.sweep.dir={sweep}")
    _refused(_cli("-m", *TINY, *args, cwd=tmp_path), start)
    assert list(tmp_path.iterdir()) == []


def test_covering_jobs_tries_every_value_once() -> None:
    """The grid check composes a few jobs in which every override of every job appears."""
    jobs = [["a=1", "b=1"], ["a=1", "b=2"], ["a=2", "b=1"], ["a=2", "b=2"], ["c=1"]]
    chosen = covering_jobs(jobs)
    assert {o for job in chosen for o in job} == {o for job in jobs for o in job}
    assert chosen == [["a=1", "b=1"], ["a=1", "b=2"], ["a=2", "b=1"], ["c=1"]]  # ["a=2", "b=2"] adds nothing


@pytest.mark.slow
def test_non_ascii_run_folder_runs(tmp_path: Path) -> None:
    """`hydra.run.dir=/tmp/résumé`: quoted for Hydra's grammar, so the run goes into that folder."""
    assert quote_values(["hydra.run.dir=/x/résumé", "seed=1", "a=é,ü"]) == ["hydra.run.dir='/x/résumé'", "seed=1",
                                                                             "a=é,ü"]
    folder = tmp_path / "résumé"
    proc = _cli(*TINY, f"hydra.run.dir={folder}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (folder / "metrics.json").exists()


@pytest.mark.parametrize("overrides", [
    ["data.num_nodes=10"],                                   # the documented minimum: its defaults shrink with it
    ["data=synthetic_temporal", "data.num_nodes=10", "data.periods=4", "eval.origins=1"],
    ["attack=linkteller", "attack.linkteller.pairs=balanced", "attack.linkteller.num_pairs=100"],  # num_nodes unread
    ["privacy=gap_edp", "privacy.epsilon=inf"],              # infinity as Hydra's grammar spells it
    ["+data.outcome.group_effect.minority=0.5"],             # a mapping of the user's own group names
])
def test_valid_input_accepted(overrides: list[str]) -> None:
    """Inputs that were refused although valid pass every check a run makes before training."""
    from gnnrisk.pipeline import prepare_run

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=["train.epochs=2", "device=cpu", *overrides])
    run = prepare_run(cfg)
    size = next((int(o.split("=")[1]) for o in overrides if o.startswith("data.num_nodes=")), None)
    assert size is None or run.data.num_nodes == size
