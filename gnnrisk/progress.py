"""A progress line across the runs of a sweep, read from the sweep folder (works with every launcher).

Configured as a Hydra callback (`hydra.callbacks.progress._target_=gnnrisk.progress.SweepProgress`).
Jobs may run in other processes or on other machines (joblib, submitit), so the callback does not
count its own jobs: a thread in the launching process watches the run folders and prints a line
whenever a run finishes, fails or starts.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from gnnrisk.results import CONFIG_FILE, ERROR_FILE, METRICS_FILE, SKIP_MARKER, find_run_dirs


@dataclass(frozen=True)
class SweepState:
    """Counts of a sweep's runs, as seen in its folder at one moment."""

    finished: int   # metrics.json written during this sweep
    skipped: int    # metrics.json from an earlier sweep, and this sweep skipped the run (fresh SKIP_MARKER)
    failed: int     # error.json written during this sweep
    running: int    # started during this sweep (config.yaml written), neither finished nor failed
    others: int = 0  # metrics.json from an earlier sweep that this sweep has not (yet) skipped
    lost: int = 0    # tasks a cluster launcher reported as ended without output (cancelled, pre-empted, timed out)

    @property
    def done(self) -> int:
        """Runs that need no more work."""
        return self.finished + self.skipped + self.failed


def _mtime(path: Path) -> float:
    """Modification time of `path`, or -inf when it does not exist."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return -math.inf


def sweep_state(sweep_dir: Path, started: float) -> SweepState:
    """Classify every run folder under `sweep_dir` by which result files exist and whether they are older than `started`."""
    counts = {"finished": 0, "skipped": 0, "failed": 0, "running": 0, "others": 0}
    for run_dir in find_run_dirs(sweep_dir) if sweep_dir.is_dir() else []:
        metrics, error = _mtime(run_dir / METRICS_FILE), _mtime(run_dir / ERROR_FILE)
        if metrics >= started:
            counts["finished"] += 1
        elif metrics > -math.inf:
            counts["skipped" if _mtime(run_dir / SKIP_MARKER) >= started else "others"] += 1
        elif error >= started:
            counts["failed"] += 1
        elif _mtime(run_dir / CONFIG_FILE) >= started:
            counts["running"] += 1
    return SweepState(**counts)


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs the basic or grid sweeper will launch; None for other sweepers."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from gnnrisk.sweeper import planned_grid_jobs

    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if target.endswith(".GridSweeper"):
        return planned_grid_jobs(sweeper, list(config.hydra.overrides.task))
    if not target.endswith("BasicSweeper"):
        return None
    grid = sweeper.get("params")
    params = [f"{k}={v}" for k, v in OmegaConf.to_container(grid).items()] if grid else []
    axes: dict[str, int] = {}
    for override in OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task)):
        size = len(list(override.sweep_string_iterator())) if override.is_discrete_sweep() else 1
        axes[override.get_key_element()] = size  # a later override of the same key replaces the earlier
    return math.prod(axes.values())


def progress_line(state: SweepState, total: int | None, elapsed: float) -> str:
    """`[sweep] 12/32 done: 10 finished, 2 skipped, 0 failed, 1 running | 0:01:23 elapsed, ~0:02:10 left`."""
    of = f"/{total}" if total else ""
    lost = f"{state.lost} lost, " if state.lost else ""
    line = (f"[sweep] {state.done}{of} done: {state.finished} finished, {state.skipped} skipped, "
            f"{state.failed} failed, {lost}{state.running} running | {_clock(elapsed)} elapsed")
    worked = state.finished + state.failed
    if total and worked and state.done < total and not state.lost:
        line += f", ~{_clock(elapsed / worked * (total - state.done))} left"
    if state.others:  # a folder shared by several sweeps (experiments/*.sh) holds the others' runs
        line += f" | {state.others} earlier finished run(s) in the folder"
    return line


def with_lost(state: SweepState, lost: int) -> SweepState:
    """`state` with `lost` tasks counted apart: a lost task's folder (if it started) is not running any more."""
    return replace(state, lost=lost, running=max(state.running - lost, 0)) if lost else state


def _clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


_LAST_SWEEP: SweepState | None = None


def last_sweep_state() -> SweepState | None:
    """The final counts of the last sweep this process launched (None before any)."""
    return _LAST_SWEEP


_LOST_TASKS: list[str] = []


def note_lost_task(message: str) -> None:
    """Remember a task that a cluster launcher reports as ended without output (cancelled, pre-empted, timed out)."""
    # submitit appends the task's stderr ("Error stream produced: ..."): the task's log files keep it
    _LOST_TASKS.append(" ".join(str(message).split("Error stream produced")[0].split()))


def lost_tasks() -> list[str]:
    """The launcher's messages about tasks lost in this process's sweeps."""
    return list(_LOST_TASKS)


class SweepProgress(Callback):
    """Hydra callback: prints a progress line of the sweep whenever a run of it ends."""

    def __init__(self, interval: float = 2.0):
        self.interval = float(interval)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Launchers pickle the callbacks to send them to the jobs: the watcher thread stays here."""
        return {"interval": self.interval}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild an idle callback in a job process."""
        self.__init__(**state)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Start watching the sweep folder in a daemon thread of the launching process."""
        sweep_dir, total = Path(config.hydra.sweep.dir), planned_jobs(config)
        started = time.time() - 1.0  # file systems with 1 s mtime resolution: count a run written this second
        self._started = started
        console = Console(stderr=True, highlight=False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, args=(sweep_dir, started, total, console),
                                        name="gnnrisk-sweep-progress", daemon=True)
        self._thread.start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Stop watching, print the final line and keep the final counts for the exit code."""
        global _LAST_SWEEP
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 * self.interval)
        if self._started is not None:
            _LAST_SWEEP = with_lost(sweep_state(Path(config.hydra.sweep.dir), self._started), len(lost_tasks()))
            if _LAST_SWEEP.lost:  # the watcher's last line still counts a lost task's folder as running
                Console(stderr=True, highlight=False).print(
                    progress_line(_LAST_SWEEP, planned_jobs(config), time.time() - self._started),
                    markup=False, soft_wrap=True)

    def _watch(self, sweep_dir: Path, started: float, total: int | None, console: Console) -> None:
        """Print a line once a job runs and whenever one ends (checked every `interval` s and once more at the end)."""
        last = None
        while True:
            stopping = self._stop.wait(self.interval)
            try:
                state = sweep_state(sweep_dir, started)
            except OSError:  # a folder removed while we looked: try again at the next tick
                continue
            if last is None and not (state.done or state.running):
                pass  # nothing launched yet (a sweeper may still refuse its settings): no line before the first job
            elif last is None or (state.finished, state.skipped, state.failed) != (last.finished, last.skipped,
                                                                                   last.failed):
                console.print(progress_line(state, total, time.time() - started), markup=False, soft_wrap=True)
                last = state
            if stopping:
                return
