"""What every logger shares: where a run is tracked, the logger interface, the store's lock, safe names."""

from __future__ import annotations

import re
import shutil
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gnnrisk.logger.record import RunRecord

LOCK_FILE = ".lock"
_UNSAFE = re.compile(r"[^\w./ -]")  # MLflow's metric and param names: word characters, . / - and spaces


@dataclass(frozen=True)
class TrackingTarget:
    """One tracked run: the store folder, the experiment (sweep) it belongs to, its name, its run folder."""

    store: Path
    experiment: str
    run_name: str
    run_dir: Path


class Logger(ABC):
    """A tracking backend: writes one finished run's record into its store."""

    name: str

    @abstractmethod
    def log(self, record: RunRecord, target: TrackingTarget) -> None:
        """Write `record` as one tracked run named `target.run_name`, replacing an earlier one of that run folder."""


@contextmanager
def store_lock(store: Path) -> Iterator[None]:
    """An exclusive lock on the store (a lock file in it), so that parallel jobs of a sweep write in turn."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / LOCK_FILE, "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: one job at a time is then the user's to ensure
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def safe_key(key: str) -> str:
    """A metric or param name every backend accepts: other characters become `_`, no empty or `..` parts."""
    parts = [_UNSAFE.sub("_", part).strip() for part in key.split("/")]
    return "/".join(part if part not in ("", ".", "..") else "_" for part in parts)


def safe_folder_name(name: str) -> str:
    """A run or experiment name as one folder name: as it is (`seed=0,model=sage`), slashes as `__`."""
    name = name.replace("\0", "_").strip("/").replace("/", "__")
    return name if name not in ("", ".", "..") else "_"


def fresh_dir(folder: Path) -> Path:
    """`folder`, emptied: a run tracked again (re-run after a failure, skip_finished=false) replaces its record."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
