"""The Slurm launcher: a task that submitit reports as ended without output is one line and exit code 3."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as Submitit

from gnnrisk import app, progress
from hydra_plugins.gnnrisk_launcher import slurm_launcher


class UncompletedJobError(RuntimeError):
    """Stands for submitit.core.utils.UncompletedJobError (matched by name)."""


def _launcher(monkeypatch: pytest.MonkeyPatch, error: Exception) -> slurm_launcher.SlurmLauncher:
    """Our launcher whose parent's launch raises `error` (no cluster, no config)."""
    def fail(self, job_overrides, initial_job_idx):
        raise error
    monkeypatch.setattr(Submitit, "launch", fail)
    monkeypatch.setattr(progress, "_LOST_TASKS", [])
    return object.__new__(slurm_launcher.SlurmLauncher)


def test_a_lost_task_is_noted_and_the_sweep_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = _launcher(monkeypatch, UncompletedJobError("Job 26_2 (task: 0) with path /x/26_2_0_result.pkl\n"
                                                          "has not produced any output (state: CANCELLED by 0)\nError stream produced:\n"
                                                          "----\nsrun: Job step aborted"))
    assert launcher.launch([["seed=0"]], 0) == []
    assert progress.lost_tasks() == [("Job 26_2 (task: 0) with path /x/26_2_0_result.pkl has not produced any "
                                      "output (state: CANCELLED by 0)")]


def test_other_errors_still_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = _launcher(monkeypatch, ValueError("sbatch: error: invalid partition"))
    with pytest.raises(ValueError, match="invalid partition"):
        launcher.launch([["seed=0"]], 0)
    assert progress.lost_tasks() == []


def test_gnnrisk_run_ends_with_one_line_and_exit_code_3(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(progress, "_LOST_TASKS", [])
    monkeypatch.setattr(app, "_entry", lambda: progress.note_lost_task("Job 26_2 (task: 0) has not produced any "
                                                                      "output (state: TIMEOUT)"))
    monkeypatch.setattr(sys, "argv", ["gnnrisk-run", "-m", "seed=0"])
    with pytest.raises(SystemExit) as exit_:
        app.main()
    assert exit_.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gnnrisk: error: a cluster task ended without output: Job 26_2")
    assert "state: TIMEOUT" in err[0] and "run the same command again" in err[0]
