"""The sweep progress display: counts read from the folder, a readable line, safe to send to other processes."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

from omegaconf import OmegaConf

from gnnrisk.progress import SweepProgress, SweepState, progress_line, sweep_state


def _touch(path: Path, when: float) -> None:
    """Create `path` with modification time `when`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.utime(path, (when, when))


def test_state_from_files_and_times(tmp_path: Path):
    """Results older than the sweep start are skipped runs; newer ones finished/failed; config only = running."""
    start = time.time()
    _touch(tmp_path / "a" / "metrics.json", start - 100)          # earlier sweep...
    _touch(tmp_path / "a" / ".skipped", start + 1)                 # ...skipped by this one
    _touch(tmp_path / "f" / "metrics.json", start - 100)           # earlier sweep, not (yet) skipped by this one
    _touch(tmp_path / "b" / "metrics.json", start + 1)             # finished now
    _touch(tmp_path / "c" / "error.json", start + 1)               # failed now
    _touch(tmp_path / "d" / "error.json", start - 100)             # failed earlier, being retried...
    _touch(tmp_path / "d" / "config.yaml", start + 1)              # ...and running now
    _touch(tmp_path / "e" / "config.yaml", start + 2)              # running
    _touch(tmp_path / "e" / ".hydra" / "config.yaml", start + 2)   # Hydra's copy is not a run
    assert sweep_state(tmp_path, start) == SweepState(finished=1, skipped=1, failed=1, running=2, others=1)
    assert sweep_state(tmp_path / "missing", start) == SweepState(0, 0, 0, 0)


def test_progress_line_with_eta():
    """Done counts, the parts, elapsed time and an estimate from the runs that did work."""
    line = progress_line(SweepState(finished=4, skipped=2, failed=0, running=1), total=10, elapsed=80.0)
    assert line == ("[sweep] 6/10 done: 4 finished, 2 skipped, 0 failed, 1 running | 0:01:20 elapsed, "
                    "~0:01:20 left")
    assert "left" not in progress_line(SweepState(10, 0, 0, 0), total=10, elapsed=5.0)
    assert progress_line(SweepState(1, 0, 0, 0), total=None, elapsed=5.0).startswith("[sweep] 1 done:")


def test_progress_line_in_a_folder_shared_with_other_sweeps():
    # a 1-job block run into a folder that already holds 8 finished runs of another block
    line = progress_line(SweepState(finished=1, skipped=0, failed=0, running=0, others=8), total=1, elapsed=40.0)
    assert line.startswith("[sweep] 1/1 done: 1 finished, 0 skipped") and "8 earlier finished run(s)" in line


def test_watcher_prints_changes_and_pickles_without_its_thread(tmp_path: Path, capsys):
    """Started on a sweep folder it reports a new result; pickled mid-sweep (as launchers do) it carries no thread."""
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["seed=0,1"]},
                                      "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                                                  "params": None}}})
    progress = SweepProgress(interval=0.05)
    progress.on_multirun_start(cfg)
    clone = pickle.loads(pickle.dumps(progress))
    assert clone._thread is None and clone.interval == 0.05
    _touch(tmp_path / "seed=0" / "metrics.json", time.time())
    time.sleep(0.3)
    progress.on_multirun_end(cfg)
    err = capsys.readouterr().err
    assert "[sweep] 1/2 done: 1 finished, 0 skipped, 0 failed, 0 running" in err
    assert not progress._thread.is_alive()


def test_a_lost_cluster_task_is_counted_lost_not_running(tmp_path: Path, capsys, monkeypatch):
    """A task the launcher reported lost (its folder started, no result) ends the sweep as lost, not running."""
    from gnnrisk import progress as progress_module

    monkeypatch.setattr(progress_module, "_LOST_TASKS", [])
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["seed=0,1"]},
                                      "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                                                  "params": None}}})
    progress = SweepProgress(interval=0.05)
    progress.on_multirun_start(cfg)
    _touch(tmp_path / "seed=0" / "metrics.json", time.time())
    _touch(tmp_path / "seed=1" / "config.yaml", time.time())  # started, then cancelled by the cluster
    time.sleep(0.3)
    progress_module.note_lost_task("Job 38_1 (task: 0) has not produced any output (state: CANCELLED by 0)")
    progress.on_multirun_end(cfg)
    last = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[sweep]")][-1]
    assert last.startswith("[sweep] 1/2 done: 1 finished, 0 skipped, 0 failed, 1 lost, 0 running") and "left" not in last
    assert progress_module.last_sweep_state().lost == 1
