"""Neighbouring cities at the person and incident units, as the mechanisms' sensitivity tests build them."""

from __future__ import annotations

import torch
from torch_geometric.data import HeteroData


def isolate_person(data: HeteroData, v: int) -> HeteroData:
    """The neighbour without person v: every edge into or out of v removed (knows both ways) and v's incidents gone
    from the record. v stays an isolated node: its rows are v's own, which no other row reads."""
    out = data.clone()
    for rel in out.edge_types:
        ei = out[rel].edge_index
        drop = torch.zeros(ei.size(1), dtype=torch.bool)
        if rel[0] == "person":
            drop |= ei[0] == v
        if rel[2] == "person":
            drop |= ei[1] == v
        out[rel].edge_index = ei[:, ~drop]
    links = data["person", "involved_in", "incident"].edge_index
    recorded = out["incident"].recorded.clone()
    recorded[links[1, links[0] == v]] = False
    out["incident"].recorded = recorded
    return out


def drop_incident(data: HeteroData, w: int) -> HeteroData:
    """The neighbour without incident w (unrecorded: the mechanisms read recorded incidents only)."""
    out = data.clone()
    recorded = out["incident"].recorded.clone()
    recorded[w] = False
    out["incident"].recorded = recorded
    return out
