"""Experiment tracking: a finished run's folder, as it stands, copied into a tracking store (`logger=...`).

A logger is looked up by `logger.name` in `LOGGERS` ("module:Class"; `none` tracks nothing). After a
run wrote metrics.json, `track_job` reads what the run folder's top level holds (gnnrisk.logger.record:
config.yaml as params, metrics.json as final metrics, history.csv as the per-epoch curve, the plots as
artifacts; never diagnostics/, what a private run's epsilon does not cover) and hands it to the logger's
`log(record, target)`. Nothing here imports a backend: mlflow and tensorboard are imported by their
module when that logger logs, so `import gnnrisk` and `gnnrisk-run --help` stay light.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from gnnrisk import folders
from gnnrisk.errors import ConfigError, check_choice
from gnnrisk.plugins import BUILTIN, Registry

if TYPE_CHECKING:
    from gnnrisk.logger.base import Logger

log = logging.getLogger(__name__)

# name -> "module:Class"; plug-ins add theirs under entry-point group `gnnrisk.loggers` (gnnrisk.plugins).
BUILTIN_LOGGERS: dict[str, str] = {
    "none": "",  # tracks nothing
    "csv": "gnnrisk.logger.csv_logger:CsvLogger",
    "mlflow": "gnnrisk.logger.mlflow_logger:MlflowLogger",
    "tensorboard": "gnnrisk.logger.tensorboard_logger:TensorboardLogger",
}
LOGGERS = Registry("logger", BUILTIN_LOGGERS)
# The importable modules each logger needs, as (module, distribution); all of them come with the extra.
PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "mlflow": (("mlflow", "mlflow-skinny"), ("sqlalchemy", "sqlalchemy"), ("alembic", "alembic")),
    "tensorboard": (("tensorboard", "tensorboard"),),
}
EXTRA = "tracking"
KEYS = ("name", "dir")  # the fields of configs/logger/*.yaml
MLFLOW_DB = "mlflow.db"  # gnnrisk.logger.mlflow_logger.DB_FILE (that module imports mlflow's helpers)
SQLITE_MAX_PATH, SQLITE_SUFFIX = 512, "-journal"  # SQLite's unix VFS: the longest path it opens, its journal's
STORE_DIR = "tracking"  # the default store: this folder inside the run folder (single run) or the sweep folder


def logger_name(logger_cfg: DictConfig | None) -> str:
    """`logger.name` (a config without the group tracks nothing)."""
    return "none" if logger_cfg is None else str(logger_cfg.get("name", "none"))


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_packages(name: str) -> None:
    """A ConfigError naming the extra to install when a package the logger needs is missing."""
    needed = PACKAGES.get(name, ())
    missing = [dist for module, dist in needed if not _installed(module)]
    if missing:
        raise ConfigError("logger", name, f"needs {', '.join(dist for _, dist in needed)}, not installed "
                          f"(missing: {', '.join(missing)}): pip install 'gnnrisk[{EXTRA}]'")


def check_writable_dir(field: str, value: Any, extra: int = 0) -> Path:
    """`value` as a folder that can be created or written to, checked without leaving anything behind."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, value, "expected null (the default store) or a folder path")
    return folders.check_writable_dir(field, value, extra)


def check_store_path(name: str, field: str, value: Any, store: Path) -> None:
    """MLflow's SQLite store opens STORE/mlflow.db and its journal: a ConfigError when that path is too long."""
    if name != "mlflow":
        return
    size = len(str(store.expanduser().absolute() / MLFLOW_DB).encode()) + len(SQLITE_SUFFIX)
    if size > SQLITE_MAX_PATH:
        raise ConfigError(field, value, f"MLflow's SQLite store cannot open {MLFLOW_DB} there: its path (with "
                          f"'{SQLITE_SUFFIX}') has {size} bytes, SQLite allows at most {SQLITE_MAX_PATH}; "
                          "use a shorter folder")


def validate_logger(logger_cfg: DictConfig | None) -> None:
    """Everything tracking can refuse, checked before any training: name, backend packages, `logger.dir`."""
    name = check_choice("logger.name", logger_name(logger_cfg), LOGGERS)
    if logger_cfg is None:
        return
    for key in logger_cfg.keys():
        if key not in KEYS:
            raise ConfigError(f"logger.{key}", logger_cfg.get(key), f"there is no setting 'logger.{key}' in logger "
                              f"(its keys: {', '.join(KEYS)})")
    if name == "none":
        return
    if LOGGERS.source(name) != BUILTIN:
        logger_class(name)  # a plug-in is imported and checked before any training
    check_packages(name)
    if logger_cfg.get("dir") is not None:
        store = check_writable_dir("logger.dir", logger_cfg.dir, extra=len(f"/{MLFLOW_DB}{SQLITE_SUFFIX}"))
        check_store_path(name, "logger.dir", logger_cfg.dir, store)


def logger_class(name: str) -> type[Logger]:
    """The class registered under `name` (its module imported now); a plug-in's must be a Logger subclass."""
    from gnnrisk.logger.base import Logger

    cls = LOGGERS.load(name)
    if LOGGERS.source(name) != BUILTIN and not (isinstance(cls, type) and issubclass(cls, Logger)
                                                and not inspect.isabstract(cls)):
        raise ConfigError("logger.name", name, f"the plug-in {LOGGERS[name]} of {LOGGERS.source(name)} must be a "
                          "gnnrisk.logger.base.Logger subclass that implements log(record, target)")
    return cls


def build_logger(name: str) -> Logger:
    """An instance of the logger registered under `name`."""
    return logger_class(name)()


def store_dir(logger_cfg: DictConfig, folder: Path) -> Path:
    """Where the tracking store lives: `logger.dir`, else tracking/ in `folder` (the run or the sweep folder)."""
    configured = logger_cfg.get("dir")
    return Path(configured).expanduser().absolute() if configured is not None else folder / STORE_DIR


def track_run(logger_cfg: DictConfig, run_dir: Path, folder: Path, experiment: str, run_name: str) -> Path | None:
    """Log the finished run in `run_dir` to the configured store (the default inside `folder`); its path.

    None for `logger=none`. Raises what the backend raises; `track_job` turns that into one line.
    """
    from gnnrisk.logger.base import TrackingTarget, store_lock
    from gnnrisk.logger.record import read_run_folder

    name = logger_name(logger_cfg)
    if name == "none":
        return None
    logger = build_logger(name)
    record = read_run_folder(run_dir)
    target = TrackingTarget(store_dir(logger_cfg, folder), experiment, run_name, run_dir.resolve())
    with store_lock(target.store):  # parallel workers of one sweep share the store
        logger.log(record, target)
    return target.store


def job_names(run_dir: Path) -> tuple[Path, str, str]:
    """The current Hydra job's default store folder, experiment and run name.

    Single run: the run folder, its parent folder's name, its own name. Multirun: the sweep folder (one
    store per sweep), its name, and the job's folder inside it (its override dirname, e.g. `seed=1`).
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    run_dir = run_dir.resolve()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return run_dir, run_dir.parent.name or "gnnrisk", run_dir.name
    sweep = Path(hydra_cfg.sweep.dir)
    sweep = (sweep if sweep.is_absolute() else Path(hydra_cfg.runtime.cwd) / sweep).resolve()
    inside = run_dir.is_relative_to(sweep) and run_dir != sweep
    return sweep, sweep.name or "gnnrisk", run_dir.relative_to(sweep).as_posix() if inside else run_dir.name


def track_job(cfg: DictConfig, run_dir: Path) -> None:
    """After a job of `gnnrisk-run` or the API wrote metrics.json: track it; a failure is one warning line.

    The finished run is never undone: metrics.json stays and the job counts as finished.
    """
    logger_cfg = cfg.get("logger")
    name = logger_name(logger_cfg)
    if name == "none":
        return
    try:
        folder, experiment, run_name = job_names(run_dir)
        store = track_run(logger_cfg, run_dir, folder, experiment, run_name)
        log.info("tracked %s with logger=%s in %s", run_dir, name, store)
    except Exception as err:  # the run finished: a tracking failure must not turn it into a failed run
        reason = " ".join(str(err).split()) or type(err).__name__
        log.warning("tracking failed (logger=%s, run %s; the run itself finished): %s: %s",
                    name, run_dir, type(err).__name__, reason[:500])


__all__ = ["LOGGERS", "track_job", "track_run", "validate_logger"]
