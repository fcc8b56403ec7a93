"""The Hydra application `gnnrisk-run` (also `python -m gnnrisk`)."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra._internal.utils import get_args_parser
from hydra.types import RunMode
from omegaconf import DictConfig

from gnnrisk.errors import ConfigError, GnnriskError, error_lines
from gnnrisk.folders import CONFIG_DIR
from gnnrisk.preflight import check_overrides, quote_values
from gnnrisk.progress import last_sweep_state, lost_tasks
from gnnrisk.results import METRICS_FILE, SKIP_MARKER, load_json_object, write_error
from gnnrisk.summary import print_summary

# The pipeline (torch, torch_geometric: ~4 s to import) is imported by the job that runs, so that
# `--help` and a refused command line answer without it.
if TYPE_CHECKING:
    from gnnrisk.pipeline import ExperimentResult

log = logging.getLogger("gnnrisk")


def run_dir_of_job() -> Path:
    """The Hydra output folder of the current job (run or multirun)."""
    return Path(HydraConfig.get().runtime.output_dir)


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """Run one job, then remove the module files PyG generated in the temp folder (see runtime)."""
    try:
        return _run_job(cfg)
    finally:
        from gnnrisk.utils.runtime import remove_generated_templates

        remove_generated_templates()


def skip_finished_of(cfg: DictConfig) -> bool:
    """`skip_finished`: whether a sweep skips the runs that finished earlier (ConfigError unless a bool)."""
    skip_finished = cfg.get("skip_finished", True)
    if not isinstance(skip_finished, bool):
        raise ConfigError("skip_finished", skip_finished, "expected true or false")
    return skip_finished


def finished_earlier(run_dir: Path) -> bool:
    """Whether `run_dir` holds a readable metrics.json (then marked as skipped); a broken one is re-run."""
    if not (run_dir / METRICS_FILE).exists():
        return False
    if load_json_object(run_dir / METRICS_FILE)[0] is not None:
        log.info("skipping %s: %s exists (finished earlier)", run_dir, METRICS_FILE)
        (run_dir / SKIP_MARKER).touch()
        return True
    log.warning("re-running %s: its %s is broken", run_dir, METRICS_FILE)
    return False


def track_finished(cfg: DictConfig, run_dir: Path) -> None:
    """A run skipped because it finished earlier still reaches the tracking store (a later `logger=...` backfills)."""
    from gnnrisk.logger import logger_name, track_job, validate_logger

    if logger_name(cfg.get("logger")) != "none":
        validate_logger(cfg.logger)
        track_job(cfg, run_dir)  # idempotent: a run tracked before is replaced, not duplicated


def execute_job(cfg: DictConfig) -> ExperimentResult | None:
    """One job in its Hydra output folder, shared by `gnnrisk-run` and `gnnrisk.run`/`gnnrisk.sweep`.

    None when a sweep skips it (finished earlier); a failure is recorded in the folder's error.json (with
    the traceback for a bug, not for a GnnriskError) and raised.
    """
    run_dir = run_dir_of_job()
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    skip_finished = skip_finished_of(cfg)
    if multirun and skip_finished and finished_earlier(run_dir):
        track_finished(cfg, run_dir)
        return None
    from gnnrisk.pipeline import execute_experiment
    from gnnrisk.utils.runtime import concurrent_workers

    try:
        workers = concurrent_workers(HydraConfig.get().launcher) if multirun else 1
        result = execute_experiment(cfg, run_dir, workers)
    except GnnriskError as err:
        write_error(run_dir, err)
        raise
    except Exception as err:  # a bug, not a user error: keep the traceback
        write_error(run_dir, err, traceback.format_exc())
        raise
    from gnnrisk.logger import track_job

    track_job(cfg, run_dir)  # `logger=...`: after metrics.json; a tracking failure is one line, the run stays finished
    return result


def _run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """Run one job; user errors become one line and exit code 2, failures in sweeps don't stop them."""
    run_dir = run_dir_of_job()
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        skip_finished_of(cfg)
    except ConfigError as err:
        print(f"gnnrisk: error: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        result = execute_job(cfg)
    except GnnriskError as err:
        for line in error_lines(err):  # one line per refused field
            print(f"gnnrisk: error: {line}", file=sys.stderr)
        if multirun:
            return None
        sys.exit(2)
    except Exception:  # a bug, not a user error: keep the traceback, and keep sweeps going
        if not multirun:
            raise
        log.exception("run %s failed; the sweep goes on", run_dir)
        return None
    if result is None:
        return None
    print_summary(result.metrics, run_dir, one_line=multirun)
    return result.metrics




@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _entry(cfg: DictConfig) -> None:
    """Hydra entry point."""
    run_job(cfg)


def main() -> None:
    """Console-script entry point: the overrides checked first, then the run or sweep.

    Exit codes: 0 all runs finished; 2 bad input (one line on stderr, nothing run); 3 a sweep ran to
    its end but some of its runs failed (their folders hold error.json), or a cluster launcher lost a
    task (cancelled, pre-empted, timed out: one line each).
    """
    if "--version" in sys.argv[1:]:  # answered before Hydra's parser, whose --version names Hydra's
        from gnnrisk import __version__

        print(f"gnnrisk {__version__}")
        return
    args = get_args_parser().parse_args(sys.argv[1:])
    if not (args.help or args.hydra_help or args.shell_completion or args.info or args.config_dir
            or args.config_path or args.config_name or args.experimental_rerun):
        overrides = quote_values(args.overrides)  # non-ASCII values (paths) quoted, as Hydra's grammar needs
        quoted = dict(zip(args.overrides, overrides))
        sys.argv = [quoted.get(arg, arg) for arg in sys.argv]
        try:
            check_overrides(overrides, CONFIG_DIR, multirun=bool(args.multirun))
        except ConfigError as err:
            print(f"gnnrisk: error: {err}", file=sys.stderr)
            sys.exit(2)
    _entry()
    state = last_sweep_state()
    failed = bool(args.multirun and state is not None and state.failed)
    if failed:
        print(f"gnnrisk: {state.failed} of {state.done} runs of the sweep failed (error.json in their folders)",
              file=sys.stderr)
    for message in lost_tasks():
        print(f"gnnrisk: error: a cluster task ended without output: {message}; its run folder has no "
              "metrics.json. Other tasks of the array may still run: when none is queued, run the same command "
              "again (finished runs are skipped)", file=sys.stderr)
    if failed or lost_tasks():
        sys.exit(3)


if __name__ == "__main__":
    main()
