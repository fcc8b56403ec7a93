"""Sanity checks every dataset passes before training: the contract of a gnnrisk `Data` object."""

from __future__ import annotations

import torch
from torch_geometric.data import Data

from gnnrisk.errors import DataError

REQUIRED = ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")


def check_dataset(data: Data, name: str) -> Data:
    """Raise a DataError naming the problem if `data` breaks the dataset contract."""
    for key in REQUIRED:
        if getattr(data, key, None) is None:
            raise DataError(f"dataset {name!r} has no field {key!r}")
    if data.num_nodes == 0:
        raise DataError(f"dataset {name!r} is empty: it has no nodes")
    if data.edge_index.numel() == 0:
        raise DataError(f"dataset {name!r} has no edges: a graph model needs at least one edge")
    if not torch.isfinite(data.x).all():
        bad = (~torch.isfinite(data.x)).any(dim=1).nonzero().flatten()
        raise DataError(f"dataset {name!r}: features of {bad.numel()} node(s) are NaN or infinite; "
                        "clean or impute them first")
    if data.edge_index.min() < 0 or data.edge_index.max() >= data.num_nodes:
        raise DataError(f"dataset {name!r}: edge_index refers to nodes outside 0..{data.num_nodes - 1}")
    for key in ("train_mask", "val_mask", "test_mask"):
        if int(getattr(data, key).sum()) == 0:
            raise DataError(f"dataset {name!r}: {key} selects no node; change the split fractions")
    if int(data.y.min()) < 0:
        raise DataError(f"dataset {name!r}: labels must be class indices 0..C-1")
    return data
