"""The (tie, period) pairs an explanation over periods scores: those within reach of a node, and which were planted."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.models.recurrent import PeriodGraph

# ---------------------------------------------------------------------------------------------- reach

@dataclass
class Reach:
    """One node's candidate (tie, period) pairs and, per period, the directed edges that carry them.

    `edges[s]` are ids into `graphs[s].edge_index` (periods 0..origin), `pair_of_edge[s]` the pair
    (row of `u`, `v`, `period`) each of them belongs to.
    """

    node: int
    u: Tensor
    v: Tensor
    period: Tensor
    edges: list[Tensor]
    pair_of_edge: list[Tensor]

    @property
    def num_pairs(self) -> int:
        """Number of candidate (tie, period) pairs."""
        return int(self.period.numel())


def node_reach(graphs: list[PeriodGraph], node: int, origin: int, hops: int, num_nodes: int) -> Reach:
    """The (tie, period s) pairs within min(hops, origin - s + 1) hops of `node` along ties of periods s..origin."""
    device = graphs[0].edge_index.device
    far = hops + 1
    dist = torch.full((num_nodes,), far, dtype=torch.long, device=device)
    dist[node] = 0
    edges: list[Tensor] = [torch.empty(0, dtype=torch.long, device=device)] * (origin + 1)
    pair_of_edge = list(edges)
    us, vs, ps = [], [], []
    offset = 0
    for s in range(origin, -1, -1):  # periods, backwards in time
        src, dst = graphs[s].edge_index
        ids = (torch.minimum(dist[src], dist[dst]) <= hops - 1).nonzero().flatten()
        lo, hi = torch.minimum(src[ids], dst[ids]), torch.maximum(src[ids], dst[ids])
        keys, inverse = torch.unique(lo * num_nodes + hi, return_inverse=True)
        edges[s], pair_of_edge[s] = ids, inverse + offset
        us.append(keys // num_nodes), vs.append(keys % num_nodes), ps.append(torch.full_like(keys, s))
        offset += keys.numel()
        dist = dist.scatter_reduce(0, src[ids], dist[dst[ids]] + 1, reduce="amin")  # one hop per period
    return Reach(node=node, u=torch.cat(us), v=torch.cat(vs), period=torch.cat(ps), edges=edges,
                 pair_of_edge=pair_of_edge)


# ---------------------------------------------------------------------------------------------- truth

class PlantedChains:
    """The planted transmissions indexed by (target, period), with the true outcome per node and period."""

    def __init__(self, data: Data):
        self.y = data.y_true.cpu().numpy().astype(bool)
        tr = data.transmissions.cpu().numpy()
        self.into: dict[tuple[int, int], list[int]] = defaultdict(list)
        for src, dst, period in tr.T.tolist():  # planted transmissions, a few per node
            self.into[(dst, period)].append(src)
        self.rows = tr

    def spell_start(self, node: int, period: int) -> int:
        """The first period of the outcome spell of `node` that contains `period`."""
        q = period
        while q > 0 and self.y[node, q - 1]:
            q -= 1
        return q

    def chain(self, node: int, target: int, origin: int) -> set[tuple[int, int, int]]:
        """(u, v, s) with u < v: the chain's pairs into `node`'s outcome at `target`, periods s <= origin."""
        out: set[tuple[int, int, int]] = set()
        seen: set[tuple[int, int]] = set()
        stack = [(node, target)]
        while stack:
            w, p = stack.pop()
            if (w, p) in seen or not self.y[w, p]:
                continue
            seen.add((w, p))
            q = self.spell_start(w, p)
            for src in self.into.get((w, q), ()):
                s = max(q - 1, 0)
                if s <= origin:
                    out.add((min(src, w), max(src, w), s))
                stack.append((src, max(q - 1, 0)))
        return out

    def every_pair(self, origin: int) -> set[tuple[int, int, int]]:
        """Every planted transmission pair of the window (`explain.ground_truth=all`)."""
        src, dst, period = self.rows
        s = np.maximum(period - 1, 0)
        keep = s <= origin
        return set(zip(np.minimum(src, dst)[keep].tolist(), np.maximum(src, dst)[keep].tolist(), s[keep].tolist()))


def pair_truth(reach: Reach, positives: set[tuple[int, int, int]]) -> Tensor:
    """Per candidate pair of `reach`: is it in `positives`."""
    rows = zip(reach.u.tolist(), reach.v.tolist(), reach.period.tolist())
    return torch.tensor([row in positives for row in rows], dtype=torch.bool)
