"""Folders a run writes to (`hydra.run.dir`, `hydra.sweep.dir`, `logger.dir`), checked before anything is written.

Light on purpose (no torch): the command-line preflight and `gnnrisk.run` call these before Hydra creates
a folder, so that a name over the file system's limit, an unwritable place or a folder holding another
finished run is one line naming the field instead of an OSError, or a finished run overwritten.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import yaml

from gnnrisk.errors import ConfigError
from gnnrisk.results import METRICS_FILE, load_json_object

# The top-level config folder (gnnrisk/conf: configs/, packaged): where Hydra composes every run from.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
NAME_MAX, PATH_MAX = 255, 4096       # Linux's limits, when the file system does not say


def _limits(existing: Path) -> tuple[int, int]:
    """The longest file name and path (bytes) the file system holding `existing` allows."""
    try:
        return os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        return NAME_MAX, PATH_MAX


def nearest_existing(folder: Path) -> Path:
    """The deepest existing folder on the way to `folder` (itself when it exists)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def check_path_length(field: str, value: Any, folder: Path, extra: int = 0) -> None:
    """A ConfigError when a name in `folder` or the whole path (plus `extra` bytes written below it) is too long."""
    root = Path(folder.anchor or "/")
    name_max, path_max = _limits(root)
    for part in folder.parts:
        size = len(part.encode())
        if size > name_max:
            raise ConfigError(field, value, f"the folder name {part[:24]}... has {size} bytes; the file system "
                              f"allows at most {name_max} per name: use a shorter name")
    size = len(str(folder).encode()) + extra
    if size > path_max:
        raise ConfigError(field, value, f"the path has {size} bytes with what is written inside it; the file "
                          f"system allows at most {path_max}: use a shorter folder")


def check_writable_dir(field: str, value: Any, extra: int = 0) -> Path:
    """`value` as a folder that can be created or written to, checked without leaving anything behind."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ConfigError(field, value, "expected a folder path")
    folder = Path(value).expanduser().absolute()
    check_path_length(field, value, folder, extra)
    try:
        existing = nearest_existing(folder)
    except OSError as err:  # e.g. a name too long for a mounted file system with its own limit
        raise ConfigError(field, value, f"expected a folder that can be created ({err.strerror or err})") from None
    if not existing.is_dir():
        raise ConfigError(field, value, f"{existing} is not a folder")
    try:  # a real write: as root, permission bits (and os.access) say yes where /proc or a read-only mount says no
        os.rmdir(tempfile.mkdtemp(prefix=".gnnrisk-write-check-", dir=existing))
    except OSError as err:
        raise ConfigError(field, value, f"expected a folder that can be created and written ({existing}: "
                          f"{err.strerror or err})") from None
    return folder


def _task_overrides(run_dir: Path) -> list[str] | None:
    """The command-line overrides (not hydra.*) the run in `run_dir` was made with, None when unknown."""
    try:
        overrides = yaml.safe_load((run_dir / OVERRIDES_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in overrides] if isinstance(overrides, list) else None


def _finished(run_dir: Path) -> bool:
    """Whether `run_dir` holds a readable metrics.json (a finished run; a broken one is re-run, as by sweeps)."""
    return (run_dir / METRICS_FILE).is_file() and load_json_object(run_dir / METRICS_FILE)[0] is not None


def check_run_folder(field: str, value: Any, overrides: Sequence[str]) -> Path:
    """The run folder `value`, refused when unusable or when it holds a finished run of another config.

    Re-running the same overrides into their own folder re-runs them (as before); a folder whose
    metrics.json comes from other overrides (or from unknown ones) would be overwritten and mixed
    with the new run's files, so it is refused.
    """
    folder = check_writable_dir(field, value, extra=len("/.hydra/overrides.yaml"))
    try:
        finished = folder.is_dir() and _finished(folder)
    except OSError:
        finished = False
    if finished:
        earlier = _task_overrides(folder)
        if earlier is None or sorted(earlier) != sorted(str(o) for o in overrides):
            made = "unknown overrides" if earlier is None else ("no overrides" if not earlier else " ".join(earlier))
            raise ConfigError(field, str(value), f"holds a finished run of another config ({made}; its "
                              f"{METRICS_FILE} would be overwritten): choose a new folder, or remove that run first")
    return folder


__all__ = ["check_path_length", "check_run_folder", "check_writable_dir", "nearest_existing"]
