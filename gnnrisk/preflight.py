"""The command line checked before Hydra starts, so that Hydra's own refusals also come as one line.

Hydra reports an unknown group member or key as a multi-line message and exit code 1. Composing
each override here first (every value of a command-line sweep once, ~0.1 s each) turns those into
the same one-line `field=value is not allowed: ...` form, exit code 2, as every other bad input.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def _keys_of(node: str, overrides: list[str]) -> str:
    """The keys of config node `node` as composed with `overrides` (inside an initialised Hydra context)."""
    try:
        cfg = compose("config", overrides=overrides)
        keys = list(OmegaConf.select(cfg, node).keys())
    except Exception:  # only decorates a message: never replace the real error by another
        return "unknown"
    return ", ".join(map(str, keys))


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
        cause = err.__cause__ or err.__context__
        reason = str(cause).splitlines()[0] if cause is not None else ""
        parent, _, leaf = key.rpartition(".")
        # the group choices alone (model=sage, data=planetoid) decide which keys a node has
        others = [o for o in overrides if "." not in o.lstrip("+~").split("=", 1)[0]]
        inner = re.match(r"Key '([^']+)' is not in struct", reason)
        if inner and inner.group(1) != leaf:  # the key exists; the mapping given for it has a key it lacks
            return ConfigError(field, value, f"{key} has no key {inner.group(1)!r} (its keys: "
                               f"{_keys_of(key, others)}); to replace the whole mapping use "
                               f"'~{key}' '+{key}=...'")
        where = f" in {parent} (its keys: {_keys_of(parent, others)})" if parent else ""
        return ConfigError(field, value, f"there is no setting {key!r}{where}")
    return ConfigError("override", " ".join(overrides), " ".join(text.split()))


def check_overrides(overrides: list[str], config_dir: str, config_name: str = "config") -> None:
    """Raise a one-line ConfigError when Hydra would refuse `overrides` (every value of a sweep is tried)."""
    try:
        trials = single_overrides(overrides)
    except OverrideParseException as err:
        raise ConfigError("override", " ".join(overrides), " ".join(str(err).split())) from None
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        for trial in trials:
            try:
                cfg = compose(config_name, overrides=trial, return_hydra_config=True)
            except (ConfigCompositionException, MissingConfigException) as err:
                raise one_line(err, trial, Path(config_dir)) from None
            except (HydraException, OmegaConfBaseException) as err:
                raise ConfigError("override", " ".join(trial), " ".join(str(err).split())) from None
            check_tracking(cfg)
            check_protocol(cfg)


def check_tracking(cfg: DictConfig) -> None:
    """The logger's settings (name, packages, a writable `logger.dir`), so a sweep is refused before its first job."""
    from gnnrisk.logger import validate_logger

    try:
        logger_cfg = OmegaConf.to_container(cfg.logger, resolve=True) if "logger" in cfg else None
    except OmegaConfBaseException:  # an interpolation only a job can resolve: the job's own check sees it
        return
    validate_logger(None if logger_cfg is None else OmegaConf.create(logger_cfg))


__all__ = ["check_overrides", "single_overrides"]
