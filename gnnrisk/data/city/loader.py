"""`data=synthetic_city`: the city that the data group describes, for the pipeline's loader registry."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import HeteroData

from gnnrisk.data.city.world import generate_city

NAME = "synthetic_city"
NODE_TYPES = ("person", "place", "incident")


def load_city(data_cfg: DictConfig, seed: int) -> HeteroData:
    """Generate the configured city for `seed` (every knob checked first, one line per bad field)."""
    cfg = OmegaConf.to_container(data_cfg, resolve=True)
    cfg.pop("name", None)
    city = generate_city(cfg, seed)
    city.name = NAME
    return city


def is_city(data: object) -> bool:
    """Whether `data` is a city (a HeteroData of people, places and incidents), not a homogeneous graph."""
    return isinstance(data, HeteroData) and all(t in data.node_types for t in NODE_TYPES)
