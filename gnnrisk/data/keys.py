"""The keys a data source knows: those of its config file, so that a key added with `+` is refused, not ignored."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gnnrisk.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf" / "data"
# Mappings whose keys are the user's own (group names): any key is allowed there, the loader checks them.
OPEN_MAPS = ("groups", "outcome.group_effect", "observation.detection_rate", "observation.false_report_rate",
             "crime.group_effect", "patrol.group_effect", "observation.detection_patrolled",
             "observation.detection_unpatrolled")


def schema_of(name: str) -> dict[str, Any] | None:
    """The fields of `configs/data/<name>.yaml` with those of its defaults; None for a source without a file."""
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        return None
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    merged: dict[str, Any] = {}
    for base in node.pop("defaults", None) or []:
        if isinstance(base, str) and base != "_self_":
            merged = OmegaConf.to_container(OmegaConf.merge(merged, schema_of(base) or {}), resolve=False)
    return OmegaConf.to_container(OmegaConf.merge(merged, node), resolve=False)


def _unknown(given: dict[str, Any], schema: dict[str, Any], prefix: str) -> tuple[str, Any, list[str]] | None:
    """The first key of `given` (dotted, from the top) that `schema` lacks, its value and the keys there."""
    for key, value in given.items():
        path = f"{prefix}{key}"
        if key not in schema:
            return path, value, [str(k) for k in schema]
        if isinstance(value, dict) and isinstance(schema[key], dict) and path not in OPEN_MAPS:
            found = _unknown(value, schema[key], path + ".")
            if found is not None:
                return found
    return None


def check_data_keys(data_cfg: DictConfig, name: str) -> None:
    """A ConfigError naming `data.<key>` when the config holds a key that data=<name> does not know."""
    schema = schema_of(name)
    if schema is None:  # a plug-in's source: its loader checks its own keys
        return
    found = _unknown(OmegaConf.to_container(data_cfg, resolve=False), schema, "")
    if found is None:
        return
    path, value, known = found
    parent, _, leaf = path.rpartition(".")
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"did you mean data.{parent + '.' if parent else ''}{close[0]}?" if close else \
        "its keys there: " + ", ".join(known)
    raise ConfigError(f"data.{path}", value, f"data={name} has no setting {path!r}; {hint}")


__all__ = ["check_data_keys", "schema_of"]
