"""Re-running an interrupted sweep with the same hydra.sweep.dir finishes it without repeating finished runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from gnnrisk.report.build import make_report
from sweep_helpers import TINY, env, metrics_files, run_sweep, sweep_command

AXES = ["model=gcn,mlp", "seed=0,-1,1"]      # seed=-1 fails (a ConfigError): recorded, the sweep goes on
METRICS = ["test_acc", "test_auroc", "test_auroc_true", "val_acc", "delta_sp"]


def _report(sweep_dir: Path, out: Path) -> pd.DataFrame:
    """The summary table the report writes (timings are not part of it)."""
    make_report(sweep_dir, out, metrics=METRICS)
    return pd.read_csv(out / "summary.csv")


def _stamps(sweep_dir: Path) -> dict[str, int]:
    """mtime (ns) of every metrics.json and config.yaml: a recomputed run rewrites both."""
    return {p.relative_to(sweep_dir).as_posix(): p.stat().st_mtime_ns
            for name in ("metrics.json", "config.yaml") for p in sweep_dir.glob(f"*/{name}")}


@pytest.mark.slow
def test_deleted_results_are_recomputed_and_nothing_else(tmp_path: Path):
    """Half the metrics.json deleted or broken: the re-run recomputes exactly those; the report is unchanged."""
    sweep = tmp_path / "sweep"
    run_sweep(sweep, *TINY, *AXES, expect=3)  # the seed=-1 runs fail: exit 3 once the sweep is done
    done = sorted(metrics_files(sweep))
    assert len(done) == 4
    failed = sorted(p.parent.name for p in sweep.glob("*/error.json"))
    assert len(failed) == 2 and all("seed=-1" in f for f in failed)
    uninterrupted = _report(sweep, tmp_path / "report_before")

    for i, run in enumerate(done[::2]):
        if i % 2:  # a truncated file (not written by the app): broken, so recomputed like a missing one
            (sweep / run / "metrics.json").write_text('{"test_acc": 0.')
        else:
            (sweep / run / "metrics.json").unlink()
    kept = {k: v for k, v in _stamps(sweep).items() if k.split("/")[0] in done[1::2]}
    time.sleep(0.05)
    proc = run_sweep(sweep, *TINY, *AXES, expect=3)

    assert sorted(metrics_files(sweep)) == done
    stamps = _stamps(sweep)
    assert {k: stamps[k] for k in kept} == kept                      # finished runs untouched
    for run in done[::2]:                                            # deleted ones recomputed
        assert stamps[f"{run}/metrics.json"] > max(kept.values())
    assert (proc.stdout + proc.stderr).count("skipping") == len(done[1::2])
    assert len(list(sweep.glob("*/error.json"))) == 2               # failures recorded again, sweep finished
    pd.testing.assert_frame_equal(_report(sweep, tmp_path / "report_after"), uninterrupted)


@pytest.mark.slow
def test_killed_sweep_resumes_and_matches_an_uninterrupted_one(tmp_path: Path):
    """A sweep killed mid-way (SIGKILL to its process group) and re-run equals a sweep that was never stopped."""
    axes = ["model=gcn,mlp", "seed=0,1,2"]
    sweep = tmp_path / "killed"
    sweep.mkdir()
    proc = subprocess.Popen(sweep_command(sweep, *TINY, *axes), cwd=tmp_path, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while len(metrics_files(sweep)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _stamps(sweep)
    finished_before = sorted(metrics_files(sweep))
    assert 2 <= len(finished_before) < 6, "the sweep was not interrupted half-way"

    out = run_sweep(sweep, *TINY, *axes)
    assert len(metrics_files(sweep)) == 6
    stamps = _stamps(sweep)
    assert all(stamps[f"{r}/metrics.json"] == before[f"{r}/metrics.json"] for r in finished_before)
    assert (out.stdout + out.stderr).count("skipping") == len(finished_before)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    run_sweep(fresh, *TINY, *axes)
    pd.testing.assert_frame_equal(_report(sweep, tmp_path / "r1"), _report(fresh, tmp_path / "r2"))
