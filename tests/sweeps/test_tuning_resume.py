"""Real `gnnrisk-run -m hydra/sweeper=optuna` studies on tiny graphs: resume, failures, private selections."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gnnrisk.report.build import make_report
from sweep_helpers import env, experiment_override, metrics_files, run_sweep, sweep_command

TINY = ["data.num_nodes=150", "train.epochs=2", "threads=1", "device=cpu"]
STUDY = [experiment_override("tune"), *TINY]


def _trials(sweep: Path) -> list[dict[str, str]]:
    """The study table the sweeper wrote."""
    with open(sweep / "tuning" / "trials.csv") as fh:
        return list(csv.DictReader(fh))


def _stamps(sweep: Path) -> dict[str, int]:
    """mtime (ns) of every run's metrics.json and config.yaml: a re-run rewrites both."""
    return {p.relative_to(sweep).as_posix(): p.stat().st_mtime_ns
            for name in ("metrics.json", "config.yaml") for p in sweep.glob(f"*/{name}")}


def _interrupt(sweep: Path, finished: int) -> list[str]:
    """Start the study and SIGKILL its process group while a trial runs after `finished` ended; the folders
    that were running."""
    proc = subprocess.Popen(sweep_command(sweep, *STUDY), cwd=sweep.parent, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    running: list[str] = []
    while time.time() < deadline and proc.poll() is None:
        done = metrics_files(sweep)
        running = [p.parent.name for p in sweep.glob("*/config.yaml") if p.parent.name not in done]
        if len(done) >= finished and running:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return running


@pytest.mark.slow
def test_interrupted_10_trial_study_resumes_to_10_complete_trials(tmp_path: Path):
    """Killed while a trial runs; the re-run keeps the finished trials untouched, retries the killed one in
    its folder and ends with exactly 10 complete trials whose values are their runs' metrics.json."""
    sweep = tmp_path / "study"
    sweep.mkdir()
    running = _interrupt(sweep, finished=3)
    assert len(running) == 1, "the study was not interrupted during a trial"
    before = _stamps(sweep)
    finished_before = sorted(metrics_files(sweep))
    assert 3 <= len(finished_before) < 10
    time.sleep(0.05)

    out = run_sweep(sweep, *STUDY)
    rows = _trials(sweep)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    interrupted = [r for r in rows if r["state"] == "INTERRUPTED"]
    assert len(complete) == 10 and len(interrupted) == 1, rows
    assert interrupted[0]["run_dir"] == running[0]
    retry = [r for r in rows if r["retry_of"] == interrupted[0]["number"]]
    assert len(retry) == 1 and retry[0]["state"] == "COMPLETE" and retry[0]["run_dir"] == running[0]
    stamps = _stamps(sweep)
    assert {k: stamps[k] for k in before if k.split("/")[0] in finished_before} == \
        {k: v for k, v in before.items() if k.split("/")[0] in finished_before}   # finished runs untouched
    metrics = metrics_files(sweep)
    assert len(metrics) == 10 and running[0] in metrics
    for row in complete:
        assert float(row["val_auroc"]) == metrics[row["run_dir"]]["val_auroc"]
    best = json.loads((sweep / "tuning" / "best.json").read_text())
    assert best["trials_complete"] == 10 and best["trials_interrupted"] == 1
    assert best["best_value"] == max(m["val_auroc"] for m in metrics.values())
    assert "continues" in out.stdout + out.stderr

    again = run_sweep(sweep, *STUDY)                          # a finished study: nothing more runs
    assert _stamps(sweep) == stamps and len(_trials(sweep)) == len(rows)
    assert "Launching" not in again.stdout + again.stderr


@pytest.mark.slow
def test_failed_trial_is_told_failed_and_the_study_goes_on(tmp_path: Path):
    """A trial whose run fails (seed=-1) is FAIL with the run's error; the other runs; exit code 3."""
    sweep = tmp_path / "study"
    sweep.mkdir()
    run_sweep(sweep, *STUDY, "seed=choice(0,-1)", "hydra.sweeper.n_trials=2", "~hydra.sweeper.params",
              "hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler",  # seed 0 draws -1, then 0
              "~hydra.sweeper.sampler.n_startup_trials", expect=3)
    rows = {r["params.seed"]: r for r in _trials(sweep)}
    assert rows["0"]["state"] == "COMPLETE" and rows["-1"]["state"] == "FAIL"
    assert "seed" in rows["-1"]["failure"] and (sweep / rows["-1"]["run_dir"] / "error.json").exists()
    best = json.loads((sweep / "tuning" / "best.json").read_text())
    assert best["trials_failed"] == 1 and best["best_run_dir"] == rows["0"]["run_dir"]


@pytest.mark.slow
def test_edge_level_study_marks_the_selection_and_bounds_it_by_the_sum(tmp_path: Path):
    """Three gap_edp trials: best.json's selection bound is the sum of the runs' epsilon and delta, and the
    report prints the labelled note."""
    sweep = tmp_path / "study"
    sweep.mkdir()
    run_sweep(sweep, *STUDY, "privacy=gap_edp", "privacy.epsilon=2", "hydra.sweeper.n_trials=3")
    metrics = metrics_files(sweep)
    best = json.loads((sweep / "tuning" / "best.json").read_text())
    assert len(metrics) == 3 and best["selection_private"] is True and best["privacy_unit"] == "edge"
    assert best["selection_epsilon_upper"] == pytest.approx(sum(m["epsilon"] for m in metrics.values()))
    assert best["selection_delta_upper"] == pytest.approx(sum(m["delta"] for m in metrics.values()))
    assert best["epsilon_per_trial"] == max(m["epsilon"] for m in metrics.values())
    assert best["selection_epsilon_upper"] > metrics[best["best_run_dir"]]["epsilon"]
    assert all(r["selection_private"] == "True" and r["privacy_unit"] == "edge" for r in _trials(sweep))
    report = make_report(sweep, tmp_path / "report", metrics=["val_auroc"])
    assert any(n.startswith("HYPERPARAMETER SELECTION NOT COVERED BY EPSILON") for n in report.notes)
