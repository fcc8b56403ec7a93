"""Study grids that are a union of products, for the Hydra sweeper `hydra/sweeper=grid`.

Hydra's basic sweeper crosses every axis, but a privacy study is not one product: `none` has no
epsilon axis, `dpsgd_node` runs only GraphSAGE, `dp_mlp` only the MLP. The grid sweeper takes
`params` (axes shared by every block, e.g. seeds) and `blocks` (each a dict of its own axes); the
jobs are the union over blocks of product(params, block, command line), in order, each distinct
job once. Axes given on the command line replace the same axis in every block. Launching is
still the configured Hydra launcher's (local, joblib, Slurm via submitit). The sweeper class lives
in `hydra_plugins/gnnrisk_sweeper`, where Hydra looks for plugins.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Iterable, Mapping, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf


def _axes(overrides: Iterable[str]) -> "OrderedDict[str, list[str]]":
    """`key -> [key=value, ...]` per override (a later override of a key replaces the earlier one)."""
    axes: OrderedDict[str, list[str]] = OrderedDict()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise HydraException(f"grid sweeper: {key} must be a list of values or a range(), not an interval")
            axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
        axes.move_to_end(key)
    return axes


def _as_overrides(params: Mapping[str, Any] | None) -> list[str]:
    """`{key: "a,b"}` as the override strings `key=a,b`."""
    return [f"{k}={'null' if v is None else v}" for k, v in (params or {}).items()]


def grid_jobs(params: Mapping[str, Any] | None, blocks: Sequence[Mapping[str, Any]] | None,
              arguments: Sequence[str]) -> list[list[str]]:
    """The override list of every job: for each block, product(params, block, arguments); repeats dropped."""
    jobs: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for block in blocks or [{}]:
        axes = _axes(_as_overrides(params) + _as_overrides(block) + list(arguments))
        for job in itertools.product(*axes.values()):
            key = frozenset(job)
            if key not in seen:
                seen.add(key)
                jobs.append(list(job))
    return jobs


def planned_grid_jobs(sweeper: DictConfig, arguments: Sequence[str]) -> int:
    """How many jobs the grid sweeper configured by `sweeper` launches with these command-line arguments."""
    container = OmegaConf.to_container(sweeper, resolve=True)
    return len(grid_jobs(container.get("params"), container.get("blocks"), arguments))
