"""Bad input to `hydra/sweeper=optuna`: exit code 2, one line naming the field, before any trial runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sweep_helpers import env, experiment_override, sweep_command

TINY = ["data.num_nodes=150", "train.epochs=2", "threads=1", "device=cpu"]
TUNE = experiment_override("tune")


@pytest.mark.parametrize("overrides,field", [
    (["hydra/sweeper=optuna", "train.lr=interval(0.001,0.1)"], "eval.objective"),   # no objective
    ([TUNE, "eval.objective=test_auroc"], "eval.objective"),                        # the test split
    ([TUNE, "eval.objective=val_loss"], "eval.objective"),                          # not written by a run
    ([TUNE, "data=ba_shapes", "eval.objective=val_auroc_true"], "eval.objective"),  # no ground truth there
    ([TUNE, "hydra.sweeper.direction=minimize"], "hydra.sweeper.direction"),
    ([TUNE, "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials"),
    ([TUNE, "model.dropout=interval(0.9,0.1)"], "model.dropout"),
    ([TUNE, "model.nope=choice(1,2)"], "model.nope"),
])
@pytest.mark.slow
def test_refused_in_one_line_before_any_trial(overrides: list[str], field: str, tmp_path: Path) -> None:
    """Exit 2, one stderr line `gnnrisk: error: FIELD...`, no traceback, no sweep folder written."""
    sweep = tmp_path / "study"
    tiny = [o for o in TINY if not o.startswith("data.")] if "data=ba_shapes" in overrides else TINY
    proc = subprocess.run(sweep_command(sweep, *tiny, *overrides), cwd=tmp_path, env=env(), capture_output=True,
                          text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"gnnrisk: error: {field}"), lines
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not sweep.exists()


@pytest.mark.slow
def test_a_study_continued_with_another_objective_is_refused(tmp_path: Path) -> None:
    """The journal's values are of one metric: resuming it for another is refused, nothing launched."""
    sweep = tmp_path / "study"
    first = subprocess.run(sweep_command(sweep, *TINY, TUNE, "hydra.sweeper.n_trials=1"), cwd=tmp_path, env=env(),
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    proc = subprocess.run(sweep_command(sweep, *TINY, TUNE, "eval.objective=val_acc"), cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "optimises val_auroc" in proc.stderr and len(list(sweep.glob("*/metrics.json"))) == 1
