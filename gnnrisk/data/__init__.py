"""Datasets: synthetic populations, PyG benchmarks and a user's own anonymised graph."""

from __future__ import annotations

import importlib
from typing import Callable

from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.data.checks import check_dataset
from gnnrisk.errors import check_choice

# name -> "module:function"; each loader takes (data_cfg, seed) and returns a checked `Data`.
LOADERS: dict[str, str] = {
    "synthetic": "gnnrisk.data.synthetic:load_synthetic",
    "planetoid": "gnnrisk.data.planetoid:load_planetoid",
    "ba_shapes": "gnnrisk.data.ba_shapes:load_ba_shapes",
    "edgelist": "gnnrisk.data.edgelist:load_edgelist",
    "synthetic_temporal": "gnnrisk.data.temporal:load_synthetic_temporal",
    "csbm": "gnnrisk.data.csbm:load_csbm",
}


def build_dataset(data_cfg: DictConfig, seed: int) -> Data:
    """Build the dataset that `data_cfg.name` names, seeded, and check it against the contract."""
    name = check_choice("data.name", data_cfg.name, LOADERS)
    module, func = LOADERS[name].split(":")
    loader: Callable[[DictConfig, int], Data] = getattr(importlib.import_module(module), func)
    data = loader(data_cfg, seed)
    if getattr(data, "num_periods", None) is not None:
        from gnnrisk.data.temporal import check_temporal_dataset

        return check_temporal_dataset(data, name)
    return check_dataset(data, name)
