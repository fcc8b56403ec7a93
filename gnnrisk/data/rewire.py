"""A graph on other edges: the same nodes and node attributes, new `edge_index`."""

from __future__ import annotations

import copy

from torch import Tensor
from torch_geometric.data import Data


def with_edges(data: Data, edge_index: Tensor) -> Data:
    """A shallow copy of `data` with `edge_index` replaced; attributes of the old edges are dropped.

    Attributes such as `causal_edge_mask` describe the old edges, not the new ones (a released,
    bounded or canary graph), so they must not travel with it.
    """
    out = copy.copy(data)
    for key in list(out.keys()):
        if key != "edge_index" and data.is_edge_attr(key):
            del out[key]
    out.edge_index = edge_index
    return out
