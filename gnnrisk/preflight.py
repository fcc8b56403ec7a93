"""The command line checked before Hydra starts, so that Hydra's own refusals also come as one line.

Hydra reports an unknown group member or key as a multi-line message and exit code 1. Composing
each override here first (every value of a command-line sweep once, ~0.1 s each) turns those into
the same one-line `field=value is not allowed: ...` form, exit code 2, as every other bad input.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gnnrisk.errors import ConfigError
from gnnrisk.protocol import check_protocol

_NOT_FOUND = re.compile(r"Could not (?:find|load) '([^']+)'")
_NO_OVERRIDE = re.compile(r"Could not override '([^']+)'")


def single_overrides(overrides: list[str]) -> list[list[str]]:
    """Override lists that together try every value of every sweep once (the rest held at their first value)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    first, options = [], []
    for override in parsed:
        if override.is_sweep_override():
            try:
                key = override.get_key_element()
                values = [f"{key}={value}" for value in override.sweep_string_iterator()]
            except Exception:  # interval and glob sweeps only a sweeper can expand: left to Hydra
                continue
        else:
            values = [override.input_line]
        if not values:
            continue
        first.append(values[0])
        options.append(values)
    lists = [first]
    for i, values in enumerate(options):
        lists += [first[:i] + [value] + first[i + 1:] for value in values[1:]]
    return lists


def _options(config_dir: Path, group: str) -> list[str]:
    """The members of a config group of gnnrisk's config folder."""
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml"))


def _override_of(key: str, overrides: list[str]) -> str:
    """The override on the command line that sets `key` (with its value), else `key`."""
    for override in overrides:
        if override.lstrip("+~").split("=", 1)[0] == key:
            return override.lstrip("+~")
    return key


def _composed(overrides: list[str]) -> DictConfig | None:
    """The config composed with `overrides` (inside an initialised Hydra context), None when it does not compose."""
    try:
        return compose("config", overrides=overrides, return_hydra_config=True)
    except Exception:  # only decorates a message: never replace the real error by another
        return None


def _missing_key(key: str, err: HydraException, others: list[str], config_dir: Path) -> str:
    """Why `key` cannot be overridden: the first part of it that does not exist, with a close match if any."""
    cfg = _composed(others)
    if cfg is None:
        return f"there is no setting {key!r}"
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            break
        node = node[part]
    else:  # the key exists: the mapping given for it has a key it lacks
        cause = err.__cause__ or err.__context__
        inner = re.match(r"Key '([^']+)' is not in struct", str(cause).splitlines()[0] if cause else "")
        lacks = f" has no key {inner.group(1)!r}" if inner else " cannot take this value"
        keys = ", ".join(map(str, node.keys())) if isinstance(node, DictConfig) else "-"
        return f"{key}{lacks} (its keys: {keys}); to replace the whole mapping use '~{key}' '+{key}=...'"
    parent = ".".join(parts[:i])
    missing = ".".join(parts[:i + 1])
    if not isinstance(node, DictConfig):
        return f"{parent} is a value, not a mapping: it has no key {parts[i]!r}"
    known = [str(k) for k in node.keys() if parent or k != "hydra"]
    if not parent:
        known += [p.name for p in config_dir.iterdir() if p.is_dir() and p.name not in known and p.name != "hydra"]
    close = difflib.get_close_matches(parts[i], known, n=1)
    what = "a config group or key" if not parent else f"a key of {parent}"
    if close:
        return f"{missing} is not {what}; did you mean {'.'.join([*parts[:i], close[0]])}?"
    return f"{missing} is not {what} (" + ("its keys: " if parent else "groups and keys: ") + ", ".join(known) + ")"


def one_line(err: HydraException, overrides: list[str], config_dir: Path) -> ConfigError:
    """Hydra's composition error as a ConfigError naming the field, the value and what is allowed."""
    text = str(err)
    found = _NOT_FOUND.search(text)
    if isinstance(err, MissingConfigException) and found:
        group, _, member = found.group(1).rpartition("/")
        options = list(getattr(err, "options", None) or _options(config_dir, group))
        allowed = "expected one of " + ", ".join(options) if options else "no such config"
        return ConfigError(group or "config", member, allowed)
    missing = _NO_OVERRIDE.search(text)
    if missing:
        key = missing.group(1)
        field, _, value = _override_of(key, overrides).partition("=")
        # the group choices alone (model=sage, data=planetoid) decide which keys a node has
        others = [o for o in overrides if "." not in o.lstrip("+~").split("=", 1)[0]
                  and o.lstrip("+~").split("=", 1)[0] != key]
        return ConfigError(field, value, _missing_key(key, err, others, config_dir))
    return ConfigError("override", " ".join(overrides), " ".join(text.split()))


def quote_values(overrides: list[str]) -> list[str]:
    """The overrides, each `key=value` that Hydra's grammar refuses only for its non-ASCII characters quoted.

    Hydra reads non-ASCII text (`hydra.run.dir=/tmp/résumé`) only inside quotes; a plain value (no quote,
    backslash, comma or bracket) that parses once quoted is quoted, so that it means what it says.
    """
    parser = OverridesParser.create()
    out = []
    for override in overrides:
        key, eq, value = override.partition("=")
        if eq and value.isascii() is False and not any(c in value for c in "'\"\\,[]{}()"):
            try:
                parser.parse_override(override)
            except HydraException:
                quoted = f"{key}='{value}'"
                try:
                    parser.parse_override(quoted)
                    override = quoted
                except HydraException:
                    pass
        out.append(override)
    return out


def _parse_error(overrides: list[str], err: Exception) -> ConfigError:
    """Hydra's refusal of a malformed override as a ConfigError naming that override's key."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except HydraException as one:
            key, eq, value = override.lstrip("+~").partition("=")
            if eq and not value.isascii():
                return ConfigError(key, value, f"Hydra reads non-ASCII characters only inside quotes: {key}='{value}' "
                                   f"(on the shell: \"{key}='{value}'\")")
            return ConfigError(key if eq else "override", value if eq else override, " ".join(str(one).split()))
    return ConfigError("override", " ".join(overrides), " ".join(str(err).split()))


def check_overrides(overrides: list[str], config_dir: str, config_name: str = "config",
                    multirun: bool | None = None) -> None:
    """Raise a one-line ConfigError when Hydra would refuse `overrides` (every value of a sweep is tried).

    `multirun` False: also the run folder (`hydra.run.dir`); True: the sweep folder, the sweeper's settings
    and every value of a grid sweeper's params and blocks; None: neither (the Python API checks its own).
    """
    try:
        trials = single_overrides(overrides)
    except OverrideParseException as err:
        raise _parse_error(overrides, err) from None
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        first = None
        for trial in trials:
            cfg = _compose_checked(config_name, trial, Path(config_dir))
            first = cfg if first is None else first
        if first is None:
            return
        task = [str(o) for o in first.hydra.overrides.task]  # what the run's .hydra/overrides.yaml records
        if multirun is False and str(_resolved(first, "hydra.mode")).endswith("MULTIRUN"):  # a study's own mode
            multirun = True
        if multirun is False:
            check_output_folder(first, "run", task)
        elif multirun:
            check_output_folder(first, "sweep", task)
            check_sweeper(first, overrides, config_name, Path(config_dir))


def _compose_checked(config_name: str, overrides: list[str], config_dir: Path) -> DictConfig:
    """The config (with its hydra node) of `overrides`, its tracking and protocol checked; a one-line ConfigError."""
    try:
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    except (ConfigCompositionException, MissingConfigException) as err:
        raise one_line(err, overrides, config_dir) from None
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError("override", " ".join(overrides), " ".join(str(err).split())) from None
    check_tracking(cfg)
    check_protocol(cfg)
    return cfg


def _resolved(cfg: DictConfig, key: str) -> Any:
    """`key` of `cfg` resolved, None when it only resolves inside a job (a `${hydra:...}` interpolation)."""
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception:  # noqa: BLE001 - a value only the job knows is the job's to check
        return None


def check_output_folder(cfg: DictConfig, mode: str, task: list[str], field: str | None = None) -> None:
    """`hydra.run.dir` (a usable folder, not holding another config's finished run) or `hydra.sweep.dir`,
    with MLflow's default store inside it; `field` names it in a refusal (`run_dir` for gnnrisk.run)."""
    from gnnrisk.folders import check_run_folder, check_writable_dir
    from gnnrisk.logger import STORE_DIR, check_store_path, logger_name

    value = _resolved(cfg, f"hydra.{mode}.dir")
    field = field or f"hydra.{mode}.dir"
    if value is None:
        return
    if mode == "run":
        folder = check_run_folder(field, str(value), task)
    else:
        folder = check_writable_dir(field, str(value), extra=len("/.hydra/multirun.yaml"))
    logger_cfg = cfg.get("logger")
    if logger_cfg is not None and _resolved(cfg, "logger.dir") is None:  # the default store, inside the folder
        check_store_path(logger_name(logger_cfg), field, str(value), folder / STORE_DIR)


def check_sweeper(cfg: DictConfig, overrides: list[str], config_name: str, config_dir: Path) -> None:
    """The sweeper's settings against its class, and a grid sweeper's jobs composed (each value once)."""
    import inspect

    from hydra.utils import get_class

    sweeper = cfg.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    choice = cfg.hydra.runtime.choices.get("hydra/sweeper", target)
    try:
        signature = inspect.signature(get_class(target))
    except Exception:  # noqa: BLE001 - a sweeper Hydra cannot import: Hydra's own message names it
        return
    if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        for key in sweeper.keys():
            if not str(key).startswith("_") and key not in signature.parameters:
                study = cfg.hydra.runtime.choices.get("experiment")
                origin = f"; it comes from experiment={study}, whose own sweeper it is for" if study else ""
                raise ConfigError(f"hydra.sweeper.{key}", _resolved(cfg, f"hydra.sweeper.{key}"),
                                  f"hydra/sweeper={choice} has no setting {key!r} (its settings: "
                                  + ", ".join(k for k in signature.parameters if k != "self") + f"){origin}")
    if target.endswith(".GridSweeper"):
        check_grid(cfg, overrides, config_name, config_dir)


def covering_jobs(jobs: list[list[str]]) -> list[list[str]]:
    """A subset of `jobs` in which every override of every job appears at least once (greedy, in order)."""
    seen: set[str] = set()
    chosen = []
    for job in jobs:
        if not seen.issuperset(job):
            chosen.append(job)
            seen.update(job)
    return chosen


def check_grid(cfg: DictConfig, overrides: list[str], config_name: str, config_dir: Path) -> None:
    """Compose jobs of the grid sweeper's params and blocks until every value of every axis was tried."""
    from gnnrisk.sweeper import grid_jobs

    parsed = OverridesParser.create().parse_overrides(overrides)
    hydra_args = [o.input_line for o in parsed if o.is_hydra_override()]
    task_args = [o.input_line for o in parsed if not o.is_hydra_override()]
    try:
        sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
        params, blocks = sweeper.get("params"), sweeper.get("blocks")
        if params is not None and not isinstance(params, dict):
            raise ConfigError("hydra.sweeper.params", params, "expected a mapping {key: values}")
        if blocks is not None and not (isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks)):
            raise ConfigError("hydra.sweeper.blocks", blocks, "expected a list of mappings {key: values}")
        jobs = grid_jobs(params, blocks, task_args)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError("hydra.sweeper.blocks", _resolved(cfg, "hydra.sweeper.blocks"),
                          " ".join(str(err).split())) from None
    given = {o.lstrip("+~").split("=", 1)[0] for o in task_args}
    for job in covering_jobs(jobs):
        try:
            _compose_checked(config_name, hydra_args + job, config_dir)
        except ConfigError as err:
            if err.field in given or err.field == "override":
                raise
            raise ConfigError(err.field, err.value, f"{err.allowed} (a value of the grid in hydra.sweeper.params "
                              "or hydra.sweeper.blocks)") from None


def check_tracking(cfg: DictConfig) -> None:
    """The logger's settings (name, packages, a writable `logger.dir`), so a sweep is refused before its first job."""
    from gnnrisk.logger import validate_logger

    try:
        logger_cfg = OmegaConf.to_container(cfg.logger, resolve=True) if "logger" in cfg else None
    except OmegaConfBaseException:  # an interpolation only a job can resolve: the job's own check sees it
        return
    validate_logger(None if logger_cfg is None else OmegaConf.create(logger_cfg))


__all__ = ["check_output_folder", "check_overrides", "quote_values", "single_overrides"]
