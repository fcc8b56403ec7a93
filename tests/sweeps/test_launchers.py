"""joblib and submitit_local each run a real small sweep; the report equals the runs' metrics.json files."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from gnnrisk.report.build import make_report
from sweep_helpers import TINY, metrics_files, run_sweep

AXES = ["model=gcn,mlp", "seed=0,1"]


def _check(sweep: Path) -> None:
    """4 finished runs; each model's summary row is the mean/stdev of its two metrics.json files."""
    runs = metrics_files(sweep)
    assert len(runs) == 4 and not list(sweep.rglob("error.json"))
    summary = make_report(sweep, metrics=["test_auroc"]).summary
    for model in ("gcn", "mlp"):
        values = [m["test_auroc"] for name, m in runs.items() if f"model={model}," in name]
        row = summary[summary["model.name"] == model].iloc[0]
        assert row["n_runs"] == 2
        assert row["test_auroc_mean"] == pytest.approx(statistics.mean(values), rel=1e-12)
        assert row["test_auroc_std"] == pytest.approx(statistics.stdev(values), rel=1e-12)


@pytest.mark.slow
def test_submitit_local(tmp_path: Path):
    """`hydra/launcher=submitit_local`: the cluster path (pickled jobs, one process each) on this machine."""
    sweep = tmp_path / "submitit"
    run_sweep(sweep, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *TINY, *AXES)
    assert list((sweep / ".submitit").iterdir())   # submitit's job folders: it really went through submitit
    _check(sweep)


@pytest.mark.slow
def test_joblib_parallel_runs_the_sweep_and_its_callbacks(tmp_path: Path):
    """`hydra/launcher=parallel` (joblib, 2 worker processes) runs the sweep; the experiment's callbacks are pickled
    to the workers, and the progress line and the end report still appear."""
    from sweep_helpers import experiment_override

    sweep = tmp_path / "joblib"
    # command-line axes replace the experiment's in every block: 4 non-private runs instead of the quick grid
    proc = run_sweep(sweep, experiment_override("quick"), "hydra/launcher=parallel", *TINY, "privacy=none",
                     "privacy.epsilon=null", *AXES)
    text = proc.stdout + proc.stderr
    assert "Joblib.Parallel" in text
    assert "[sweep] 4/4 done: 4 finished, 0 skipped, 0 failed" in text
    assert "mean ± std (ddof=1) over seeds" in text and (sweep / "report" / "summary.md").exists()
    _check(sweep)
