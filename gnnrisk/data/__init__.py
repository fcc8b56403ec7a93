"""Datasets: synthetic populations, PyG benchmarks and a user's own anonymised graph."""

from __future__ import annotations

from typing import Callable

from omegaconf import DictConfig
from torch_geometric.data import Data, HeteroData

from gnnrisk.data.checks import check_dataset
from gnnrisk.data.city.loader import is_city
from gnnrisk.data.keys import check_data_keys
from gnnrisk.errors import ConfigError, check_choice
from gnnrisk.plugins import Registry

# name -> "module:function"; each loader takes (data_cfg, seed) and returns a `Data` meeting the contract of
# gnnrisk.data.checks (or, for the city, a HeteroData of people, places and incidents). Plug-ins add theirs
# under entry-point group `gnnrisk.datasets` (gnnrisk.plugins).
BUILTIN_LOADERS: dict[str, str] = {
    "synthetic": "gnnrisk.data.synthetic:load_synthetic",
    "planetoid": "gnnrisk.data.planetoid:load_planetoid",
    "facebook100": "gnnrisk.data.facebook100:load_facebook100",
    "benchmark": "gnnrisk.data.benchmark:load_benchmark",
    "ba_shapes": "gnnrisk.data.ba_shapes:load_ba_shapes",
    "edgelist": "gnnrisk.data.edgelist:load_edgelist",
    "synthetic_temporal": "gnnrisk.data.temporal:load_synthetic_temporal",
    "csbm": "gnnrisk.data.csbm:load_csbm",
    "synthetic_city": "gnnrisk.data.city.loader:load_city",
    "in_memory": "gnnrisk.data.in_memory:load_in_memory",  # a Data given to gnnrisk.run(data=...)
}
LOADERS = Registry("dataset", BUILTIN_LOADERS)


def build_dataset(data_cfg: DictConfig, seed: int) -> Data | HeteroData:
    """Build the dataset that `data_cfg.name` names, seeded, and check it against the contract."""
    name = check_choice("data.name", data_cfg.name, LOADERS)
    check_data_keys(data_cfg, name)  # a key added with `+` that the source does not know is refused, not ignored
    loader: Callable[[DictConfig, int], Data] = LOADERS.load(name)
    if not callable(loader):
        raise ConfigError("data.name", name, f"{LOADERS[name]} of {LOADERS.source(name)} is not a loader "
                          "function (data_cfg, seed) -> torch_geometric.data.Data")
    data = loader(data_cfg, seed)
    if is_city(data):
        return data
    if not isinstance(data, Data):
        raise ConfigError("data.name", name, f"{LOADERS[name]} of {LOADERS.source(name)} returned "
                          f"{type(data).__name__}, not a torch_geometric.data.Data")
    if getattr(data, "num_periods", None) is not None:
        from gnnrisk.data.temporal import check_temporal_dataset

        return check_temporal_dataset(data, name)
    return check_dataset(data, name)
