"""gnnrisk from Python (notebooks): `run` one experiment, `sweep` a grid, as `gnnrisk-run` does.

Both compose gnnrisk's configs through Hydra's compose API (the same config folder, the same overrides,
the same one-line ConfigError/DataError refusals, raised here instead of printed) and hand each job to
Hydra's own `run_job`, with the job function of `gnnrisk-run` (`gnnrisk.app`): a run folder holds
exactly what the command line writes (config.yaml, env.json, metrics.json, history.csv, stage outputs,
Hydra's `.hydra/` and `app.log`), and a sweep folder is laid out as `gnnrisk-run -m` lays it out
(`hydra/launcher=basic`: one run after the other in this process), so `gnnrisk-report` reads it.
Hydra's global state (GlobalHydra, HydraConfig, the root logger's handlers) is restored after each call.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from hydra import compose, initialize_config_dir
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, run_job
from hydra.errors import HydraException
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from gnnrisk.app import CONFIG_DIR, execute_job, skip_finished_of
from gnnrisk.app import run_job as cli_job
from gnnrisk.errors import ConfigError
from gnnrisk.preflight import check_output_folder, check_overrides, quote_values

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn
    from torch_geometric.data import Data

    from gnnrisk.privacy import TrainedModel

CONFIG_NAME = "config"
VERSION_BASE = "1.3"  # as `@hydra.main` in gnnrisk/app.py
# `gnnrisk.sweep` runs its jobs one after the other in this process, as `gnnrisk-run -m ... hydra/launcher=basic`.
LAUNCHER = "hydra/launcher=basic"


@dataclass
class RunResult:
    """One finished run: its metrics, its folder, its config, its data and its trained model.

    `metrics`: what the run's metrics.json holds. `run_dir`: the run folder. `config`: the run's composed
    config (what the folder's config.yaml holds). `data`: the graph as the run built it (on the run's
    device). `trained`: the mechanism's TrainedModel, whose `trained.model` (also `model`) is the torch
    module, `trained.graph` the graph it is queried on (the released graph for EdgeRand/LapGraph),
    `trained.predict_proba()` its predictions, `trained.privacy` the privacy fields and `trained.fit` the
    training record.
    """

    metrics: dict[str, Any]
    run_dir: Path
    config: DictConfig
    data: Data
    trained: TrainedModel

    @property
    def model(self) -> nn.Module:
        """The trained torch module (`trained.model`)."""
        return self.trained.model

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={self.metrics[k]!r}" for k in ("mechanism", "epsilon", "test_auroc")
                          if k in self.metrics)
        return f"RunResult(run_dir={str(self.run_dir)!r}, {shown})"


def run(overrides: Sequence[str] = (), run_dir: str | Path | None = None, data: Data | None = None) -> RunResult:
    """Run one experiment, as `gnnrisk-run OVERRIDES hydra.run.dir=RUN_DIR` does; return its RunResult.

    `overrides`: Hydra overrides as on the command line, e.g. `["privacy=gap_edp", "privacy.epsilon=4"]`.
    `run_dir`: the run folder (default: the config's `hydra.run.dir`, outputs/runs/DATE/TIME_..., relative
    to the working directory). `data`: a `torch_geometric.data.Data` of your own (x, edge_index, y, and
    split masks if you have them) instead of a `data=` config: it runs as `data=in_memory`, anonymised on load
    (`gnnrisk.data.in_memory`), and the run's config records its fingerprint. Bad input raises the
    ConfigError or DataError whose text `gnnrisk-run` prints after `gnnrisk: error: `; the run folder then
    holds error.json, as on the command line.
    """
    overrides = _override_list(overrides, "overrides")
    with _graph_given(data, overrides) as overrides, _hydra_state_kept():
        _refuse_sweeps(overrides)
        [cfg] = _compose_jobs([overrides], ["hydra.mode=RUN"], overrides)
        if run_dir is not None:
            _set_folder(cfg, "run", run_dir, record=True)
        check_output_folder(cfg, "run", list(cfg.hydra.overrides.task), "run_dir" if run_dir is not None else None)
        ret = _launch(cfg, "hydra.run.dir", None, _api_job)
    outcome = ret.return_value
    if isinstance(outcome, Exception):
        raise outcome
    return RunResult(outcome.metrics, Path(ret.hydra_cfg.hydra.runtime.output_dir), ret.cfg, outcome.data,
                     outcome.trained)


def sweep(grid: Mapping[str, Any] | Sequence[str] | Sequence[Sequence[str]],
          sweep_dir: str | Path | None = None, overrides: Sequence[str] = (), data: Data | None = None) -> pd.DataFrame:
    """Run every job of a grid one after the other, as `gnnrisk-run -m ... hydra/launcher=basic`; return its runs.

    `grid`: the jobs, as a mapping, a command line or a list of command lines. It is one of:
      - a mapping `{key: value or list of values}`, crossed: `{"privacy.epsilon": [1, 4], "seed": [0, 1]}`;
      - a command line as a list of override strings (what follows `gnnrisk-run -m`), sweeps as `a,b,c` or
        `range(5)`: `["experiment=quick", "seed=0,1"]` (a study's own grid applies, as on the command line);
      - a list of such command lines, e.g. one per run: `[["privacy=none"], ["privacy=gap_edp", "seed=1"]]`.
    `overrides`: added to every command line (the grid's own values win over them). `data`: a graph of
    your own for every job, as in `run` (the grid then must not choose another `data=`).
    `sweep_dir`: the sweep folder (default: the config's `hydra.sweep.dir`, e.g. outputs/quick for
    `experiment=quick`); one run folder per job, named by its overrides as by `gnnrisk-run -m`.

    Every job is composed before any runs (a bad override raises the CLI's one-line ConfigError). Like the
    command line, runs that finished earlier are skipped (`skip_finished=false` recomputes them), a run
    that fails leaves error.json and the sweep goes on (a warning at the end says how many failed), and a
    line is printed per finished run. Returns the runs of this sweep as `gnnrisk.report.load` gives them
    (one row per run folder: status, `cfg.*` config values, metrics).
    """
    with _graph_given(data, _override_list(overrides, "overrides")) as common:
        lines = _command_lines(grid, common)
        if data is not None:
            _refuse_other_data([o for line in lines for o in line])
        return _sweep_lines(lines, sweep_dir)


def _sweep_lines(lines: list[list[str]], sweep_dir: str | Path | None) -> pd.DataFrame:
    """`sweep`'s work once the command lines are known: compose every job, then run them one after the other."""
    with _hydra_state_kept():
        configs, folder = _sweep_configs(lines)
        target = Path(sweep_dir if sweep_dir is not None else folder)
        for cfg in configs:
            _set_folder(cfg, "sweep", target, record=sweep_dir is not None)
        for cfg in configs[:1]:  # a usable folder, with room for MLflow's default store
            check_output_folder(cfg, "sweep", [], "sweep_dir" if sweep_dir is not None else None)
        run_dirs = []
        for i, cfg in enumerate(configs):
            with open_dict(cfg.hydra):
                cfg.hydra.job.id = cfg.hydra.job.num = i  # as Hydra's basic launcher numbers its jobs
            ret = _launch(cfg, "hydra.sweep.dir", "hydra.sweep.subdir", cli_job)
            run_dirs.append(Path(ret.hydra_cfg.hydra.runtime.output_dir))
    return _runs_of(target, run_dirs)


@contextmanager
def _graph_given(data: Data | None, overrides: list[str]) -> Iterator[list[str]]:
    """The overrides, with `data=in_memory` and the graph's fingerprint when a graph is given (held meanwhile)."""
    if data is None:
        yield overrides
        return
    from gnnrisk.data.in_memory import NAME, given_graph

    _refuse_other_data(overrides)
    with given_graph(data) as fingerprint:
        yield [*overrides, f"data={NAME}", f"data.fingerprint={fingerprint}"]


def _refuse_other_data(overrides: list[str]) -> None:
    """With a graph given from Python, no override may choose another dataset."""
    from gnnrisk.data.in_memory import NAME

    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+~") == "data" and value != NAME:
            raise ConfigError("data", value, f"a graph given as gnnrisk.run(data=...) runs as data={NAME}; "
                              f"remove the override {item!r}")


def _override_list(overrides: Any, name: str) -> list[str]:
    """A list of override strings (a single string is refused: it would be read character by character)."""
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) for o in overrides):
        raise TypeError(f"{name}: expected a list of override strings such as ['model=sage', 'seed=1'], "
                        f"got {overrides!r}")
    return quote_values(list(overrides))  # non-ASCII values (paths) quoted for Hydra's grammar, as gnnrisk-run does


def _parse(overrides: list[str]) -> list[Any]:
    """Hydra's parse of the overrides; a malformed one raises the CLI's one-line ConfigError."""
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        check_overrides(overrides, CONFIG_DIR)
        raise


def _refuse_sweeps(overrides: list[str]) -> None:
    """`run` is one run: a sweep value (`a,b`, `range()`) is a ConfigError that points to `sweep`."""
    for override in _parse(overrides):
        if override.is_sweep_override():
            key, _, value = override.input_line.lstrip("+~").partition("=")
            raise ConfigError(key, value, "a sweep: gnnrisk.run runs one experiment; use gnnrisk.sweep "
                                          "(or a list value: key=[a,b])")


def _refuse_launchers(overrides: list[Any], line: list[str]) -> None:
    """A sweep of the API runs in this process: a launcher override is a ConfigError."""
    for override in overrides:
        if override.key_or_group == "hydra/launcher" or override.key_or_group.startswith("hydra.launcher."):
            key, _, value = override.input_line.lstrip("+~").partition("=")
            raise ConfigError(key, value, "gnnrisk.sweep runs its jobs one after the other in this process; "
                                          "for launchers use gnnrisk-run -m " + " ".join(line))


@contextmanager
def _hydra_state_kept() -> Iterator[None]:
    """Hydra's global state and the root logger as they were, whatever happens inside.

    An initialised GlobalHydra (a notebook that called `hydra.initialize` without a `with`) is set
    aside for the call and put back after it; each step initialises Hydra in a `with` of its own.
    """
    outer = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):  # Hydra's job logging (console, the run's app.log)
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)


@contextmanager
def _hydra() -> Iterator[Any]:
    """Hydra initialised on gnnrisk's config folder (the one `gnnrisk-run` reads); yields its config loader."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=VERSION_BASE):
        yield GlobalHydra.instance().config_loader()


def _compose_jobs(jobs: list[list[str]], hydra_overrides: list[str], line: list[str]) -> list[DictConfig]:
    """Every job's config (its `hydra` node included) as `gnnrisk-run` composes it, all before any job runs.

    A refused job raises the one-line ConfigError that `gnnrisk-run` prints for its command line `line`.
    """
    configs: list[DictConfig] = []
    failed: tuple[list[str], Exception] | None = None
    with _hydra():
        for job in jobs:
            try:
                cfg = compose(CONFIG_NAME, overrides=hydra_overrides + job, return_hydra_config=True)
            except (HydraException, OmegaConfBaseException) as err:
                failed = (job, err)
                break
            configs.append(cfg)
    if failed is not None:
        job, err = failed
        check_overrides(line, CONFIG_DIR)  # the command line's own refusal, as gnnrisk-run prints it
        check_overrides(job, CONFIG_DIR)
        raise ConfigError("override", " ".join(job), " ".join(str(err).split())) from None
    for cfg in configs:
        skip_finished_of(cfg)  # checked by every job of gnnrisk-run too: here before any job runs
    return configs


def _launch(cfg: DictConfig, dir_key: str, subdir_key: str | None, job: Callable[[DictConfig], Any]) -> JobReturn:
    """Run `job` on `cfg` through Hydra's `run_job`, as Hydra's basic launcher does (folder, .hydra/, app.log)."""
    with _hydra() as loader:
        return run_job(task_function=job, config=cfg, job_dir_key=dir_key, job_subdir_key=subdir_key,
                       hydra_context=HydraContext(config_loader=loader, callbacks=Callbacks()))


def _set_folder(cfg: DictConfig, mode: str, folder: str | Path, record: bool) -> None:
    """Set `hydra.<mode>.dir` (run or sweep) to `folder`; `record`: also among the Hydra overrides
    (.hydra/hydra.yaml), as the command line `gnnrisk-run hydra.<mode>.dir=FOLDER` records it."""
    with open_dict(cfg.hydra):
        cfg.hydra[mode].dir = str(folder)
        if record:
            cfg.hydra.overrides.hydra.insert(0, f"hydra.{mode}.dir={folder}")


def _api_job(cfg: DictConfig) -> Any:
    """`gnnrisk-run`'s job without its console side (summary, exit codes): the ExperimentResult, or the
    exception that `run` raises once Hydra's state is restored (Hydra would log it as a failed job)."""
    try:
        return execute_job(cfg)
    except Exception as err:
        return err
    finally:
        from gnnrisk.utils.runtime import remove_generated_templates

        remove_generated_templates()


def _value_text(value: Any) -> str:
    """A Python value as an override value: None as null, booleans as true/false, lists as [a,b]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    return str(value)


def _command_lines(grid: Any, overrides: list[str]) -> list[list[str]]:
    """The grid as command lines (lists of override strings), `overrides` first in each."""
    if isinstance(grid, Mapping):
        line = []
        for key, values in grid.items():
            if not isinstance(values, (list, tuple, range)):
                values = [values]
            if not len(values):
                raise ConfigError(str(key), list(values), "an axis needs at least one value")
            line.append(f"{key}=" + ",".join(_value_text(v) for v in values))
        return [overrides + line]
    if isinstance(grid, (str, bytes)):
        raise TypeError(f"grid: expected a mapping, a list of override strings or a list of such lists, got {grid!r}")
    grid = list(grid)
    if all(isinstance(item, str) for item in grid):
        return [overrides + grid]
    return [overrides + _override_list(item, "grid entry") for item in grid]


def _sweep_configs(lines: list[list[str]]) -> tuple[list[DictConfig], str]:
    """The composed config of every distinct job of the command lines, and the first line's `hydra.sweep.dir`.

    Jobs are what `gnnrisk-run -m LINE` launches: the line's sweeps crossed, and through the configured
    sweeper (a study's `hydra/sweeper: grid`) its params and blocks, with gnnrisk's grid expansion.
    """
    from gnnrisk.sweeper import grid_jobs

    configs: list[DictConfig] = []
    seen: set[frozenset[str]] = set()
    folder: str | None = None
    for line in lines:
        parsed = _parse(line)
        _refuse_launchers(parsed, line)
        hydra_args = [o.input_line for o in parsed if o.is_hydra_override()]
        task_args = [o.input_line for o in parsed if not o.is_hydra_override()]
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        [master] = _compose_jobs([fixed], [LAUNCHER, "hydra.mode=MULTIRUN"], line)
        sweeper = master.hydra.sweeper
        target = str(sweeper.get("_target_", ""))
        if not target.endswith(("BasicSweeper", ".GridSweeper")):
            raise ConfigError("hydra.sweeper._target_", target, "gnnrisk.sweep expands the basic and the grid "
                                                                 "sweeper only; for others use gnnrisk-run -m")
        container = OmegaConf.to_container(sweeper, resolve=True)
        blocks = container.get("blocks") if target.endswith(".GridSweeper") else None
        try:
            jobs = grid_jobs(container.get("params"), blocks, task_args)
        except HydraException as err:
            raise ConfigError("override", " ".join(line), " ".join(str(err).split())) from None
        jobs = [job for job in jobs if frozenset(hydra_args + job) not in seen]
        seen.update(frozenset(hydra_args + job) for job in jobs)
        configs += _compose_jobs(jobs, hydra_args + [LAUNCHER, "hydra.mode=MULTIRUN"], line)
        if folder is None:
            folder = str(master.hydra.sweep.dir)  # resolved once: `${now:...}` is the same for every job
    return configs, folder or "."


def _runs_of(sweep_dir: Path, run_dirs: list[Path]) -> pd.DataFrame:
    """The rows of `run_dirs` in the sweep folder's run table (as `gnnrisk.report.load`), in job order;
    warns when some of them failed, as `gnnrisk-run -m` does with exit status 3."""
    import pandas as pd

    from gnnrisk.report import load
    from gnnrisk.report.collect import FINISHED, RUN_COLUMNS

    if not run_dirs:
        return pd.DataFrame(columns=list(RUN_COLUMNS))
    runs = load(sweep_dir)
    names = list(dict.fromkeys(d.resolve().relative_to(sweep_dir.resolve()).as_posix() for d in run_dirs))
    order = {name: i for i, name in enumerate(names)}
    ours = runs[runs["run"].isin(list(order))]
    ours = ours.iloc[ours["run"].map(order).argsort(kind="stable")].reset_index(drop=True)
    failed = int((ours["status"] != FINISHED).sum())
    if failed:
        warnings.warn(f"{failed} of {len(names)} runs of the sweep failed (error.json in their folders; "
                      f"status and error columns)", UserWarning, stacklevel=3)
    return ours


__all__ = ["RunResult", "run", "sweep"]
