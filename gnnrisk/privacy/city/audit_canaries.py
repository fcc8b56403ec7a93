"""Canaries on the city for `gnnrisk.privacy.city.audit`: drawing them, building the city with the included ones,
and the attacker's score on a released hop-1 aggregation.

A canary is a set of designed edges (relation, source, destination) in city coordinates, plus, for node canaries,
new nodes appended after the existing ones (so every existing node keeps its id in every city the audit builds).
The score of an aggregation release reads only rows of nodes that exist in both neighbouring cities (places and
existing people): the rows of a canary's own nodes are internal to the mechanism and never released.

Scoring (`aggregation_scores`): the attacker knows everything but the coins, hence the noise-free release of the
city without any canary (the baseline). For every released row g = (relation, destination) that canaries send
messages into, the residual r_g = z_g - baseline_g is sum_c b_c M_{c,g} + N(0, sigma^2 I), with b_c the coin and
M_{c,g} the sum of canary c's hop-0 messages into that row. The coins are estimated by least squares on the group's
columns, and each estimate is weighted by its inverse variance (1 / [(M^T M)^-1]_cc, which is |M_{c,g}|^2 for a row
only one canary reaches: then the term is <r_g, M_{c,g}>, the projection the brief names). Summed over rows this is
the Gaussian likelihood-ratio statistic when the rows are exclusive. Rows whose columns are (numerically) linearly
dependent are skipped (e.g. many canaries at one place with more canaries than feature dimensions).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.utils import coalesce

Rel = tuple[str, str, str]
MAX_COND = 1e6  # a row group whose Gram matrix is worse conditioned than this is skipped


@dataclass
class Canaries:
    """Designed canaries: per canary its edges (rel -> [(src, dst)]), its own new nodes, and its inclusion coin."""

    include: np.ndarray  # [C] bool
    edges: list[dict[Rel, list[tuple[int, int]]]]
    new_nodes: dict[str, int] = field(default_factory=dict)  # node type -> new nodes per canary (0 or 1 or D)
    first_new: dict[str, int] = field(default_factory=dict)  # node type -> id of the first canary node (all canaries)


def rev(rel: Rel) -> Rel | None:
    """The reverse relation stored with `rel` (None for a relation within one type, stored both ways)."""
    src, name, dst = rel
    return None if src == dst else (dst, f"rev_{name}", src)


def with_edges(data: HeteroData, added: dict[Rel, Tensor]) -> HeteroData:
    """A shallow copy of `data` with `added` edges (each [2, k]) appended to their relations, coalesced."""
    out = copy.copy(data)
    for rel, ei in added.items():
        if ei.numel() == 0:
            continue
        out[rel].edge_index = coalesce(torch.cat([data[rel].edge_index, ei.long()], dim=1),
                                       num_nodes=max(int(out[rel[0]].num_nodes), int(out[rel[2]].num_nodes)))
    return out


def with_nodes(data: HeteroData, node_type: str, count: int, values: dict[str, Tensor]) -> HeteroData:
    """A shallow copy of `data` with `count` nodes appended to `node_type`: `values` for the given attributes, zeros
    for every other per-node tensor."""
    out = copy.copy(data)
    n = int(data[node_type].num_nodes)
    store = out[node_type]
    for key, value in list(data[node_type].items()):
        if isinstance(value, Tensor) and value.dim() >= 1 and value.size(0) == n:
            extra = values.get(key, value.new_zeros((count, *value.shape[1:])))
            store[key] = torch.cat([value, extra.to(value.dtype)])
    store.num_nodes = n + count
    return out


def canary_city(data: HeteroData, canaries: Canaries, chosen: np.ndarray, node_values: dict[str, dict[str, Tensor]]
                ) -> HeteroData:
    """`data` with the chosen canaries: their new nodes (ids first_new + rank among the chosen) and their edges.

    `node_values[type][attr]` holds the attribute rows of every canary's new nodes (all canaries, in canary order,
    `new_nodes[type]` rows each); the chosen ones are appended. Edge ends that are new nodes are given in the
    all-canaries numbering and renumbered here."""
    out = data
    remap: dict[str, np.ndarray] = {}
    for t, per in canaries.new_nodes.items():
        rows = np.repeat(chosen, per)
        out = with_nodes(out, t, int(rows.sum()), {k: v[torch.from_numpy(rows)] for k, v in node_values[t].items()})
        new_id = np.full(rows.size, -1, dtype=np.int64)
        new_id[rows] = canaries.first_new[t] + np.arange(int(rows.sum()))
        remap[t] = new_id
    added: dict[Rel, list[tuple[int, int]]] = defaultdict(list)
    for c in np.flatnonzero(chosen):
        for rel, pairs in canaries.edges[c].items():
            added[rel] += pairs
    tensors = {}
    for rel, pairs in added.items():
        ei = torch.tensor(pairs, dtype=torch.long).T
        for side, t in ((0, rel[0]), (1, rel[2])):
            if t in remap:
                first = canaries.first_new[t]
                new = ei[side] >= first
                ei[side, new] = torch.from_numpy(remap[t][(ei[side, new] - first).numpy()])
        tensors[rel] = ei
    return with_edges(out, tensors)


def designed_messages(canaries: Canaries, h0: dict[str, Tensor], own: dict[str, int],
                      snap_id: dict[str, Tensor] | None = None) -> dict[tuple[Rel, int], dict[int, Tensor]]:
    """(relation, destination row) -> {canary: the sum of its hop-0 messages into that row}, for destinations that
    are not canary nodes (ids below own[type]); sources mapped to snapshot ids by `snap_id` where given."""
    out: dict[tuple[Rel, int], dict[int, Tensor]] = defaultdict(dict)
    for c, edges in enumerate(canaries.edges):
        for rel, pairs in edges.items():
            src, _, dst = rel
            for s, d in pairs:
                if d >= own.get(dst, 1 << 62):
                    continue  # a message into a canary's own node: internal, never released
                s_row = int(snap_id[src][s]) if snap_id and src in snap_id else s
                cell = out[(rel, d)]
                cell[c] = cell[c] + h0[src][s_row] if c in cell else h0[src][s_row].clone()
    return out


def aggregation_scores(release: dict[Rel, Tensor], baseline: dict[Rel, Tensor],
                       messages: dict[tuple[Rel, int], dict[int, Tensor]], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per canary: the weighted least-squares statistic over the rows it reaches, and its weight sum (the squared
    norm of the signal the statistic uses: a canary's mean shift is that sum, its noise variance sigma^2 times it)."""
    score, weight = np.zeros(count), np.zeros(count)
    for (rel, d), cols in messages.items():
        r = (release[rel][d] - baseline[rel][d]).double()
        ids = list(cols)
        h = torch.stack([cols[c] for c in ids], dim=1).double()  # [F, k]
        gram = h.T @ h
        if len(ids) > h.size(0) or torch.linalg.cond(gram) > MAX_COND:
            continue
        inv = torch.linalg.inv(gram)
        w = 1.0 / torch.diagonal(inv)
        b = inv @ (h.T @ r)
        for i, c in enumerate(ids):
            score[c] += float(w[i] * b[i])
            weight[c] += float(w[i])
    return score, weight
