"""Neighbour sampling for mini-batch training that needs neither pyg-lib nor torch-sparse.

`VectorNeighborSampler` plugs into PyG's loader API (`NodeLoader` with a `BaseSampler`) and
samples up to `num_neighbors[h]` incoming neighbours per node and hop, uniformly without
replacement, with tensor operations only. `make_node_loader` returns PyG's own
`NeighborLoader` when pyg-lib or torch-sparse is installed, and this sampler otherwise.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput
from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE


class VectorNeighborSampler(BaseSampler):
    """Uniform k-hop neighbour sampler over incoming edges (CSC), vectorised per hop."""

    def __init__(self, data: Data, num_neighbors: Sequence[int], seed: int = 0):
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.num_nodes = int(data.num_nodes)
        src, dst = data.edge_index
        self.perm = torch.argsort(dst * self.num_nodes + src)  # CSC position -> original edge id
        self.row = src[self.perm]
        self.colptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        self.colptr[1:] = torch.cumsum(torch.bincount(dst, minlength=self.num_nodes), 0)
        self.local = torch.full((self.num_nodes,), -1, dtype=torch.long)  # global -> local, reset per batch
        self.generator = torch.Generator().manual_seed(seed)

    def _sample_hop(self, frontier: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Return (CSC positions, index into frontier) of up to k random in-edges per frontier node."""
        start = self.colptr[frontier]
        deg = self.colptr[frontier + 1] - start
        total = int(deg.sum())
        if total == 0:
            empty = torch.empty(0, dtype=torch.long)
            return empty, empty
        seg = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
        offset = torch.cumsum(deg, 0) - deg
        within = torch.arange(total) - offset[seg]
        if k < 0:  # -1 means all neighbours, as in PyG
            keep = torch.ones(total, dtype=torch.bool)
            order = torch.arange(total)
        else:
            # random keys sorted inside each segment give a uniform random order per node
            keys = seg.to(torch.float64) + torch.rand(total, generator=self.generator, dtype=torch.float64)
            order = torch.argsort(keys)
            keep = within < k  # `within` is the rank inside the segment after sorting
        chosen = order[keep]
        return start[seg[chosen]] + within[chosen], seg[chosen]

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        """Sample the k-hop computation graph of the seed nodes (seeds first, then hop by hop)."""
        seeds = index.node
        nodes = [seeds]
        self.local[seeds] = torch.arange(seeds.numel())
        count = seeds.numel()
        rows, cols, edges = [], [], []
        frontier = seeds
        num_nodes, num_edges = [seeds.numel()], []
        for k in self.num_neighbors:
            pos, seg = self._sample_hop(frontier, k)
            src = self.row[pos]
            new = torch.unique(src[self.local[src] < 0])
            self.local[new] = torch.arange(count, count + new.numel())
            count += new.numel()
            rows.append(self.local[src])
            cols.append(self.local[frontier[seg]])
            edges.append(self.perm[pos])
            nodes.append(new)
            num_nodes.append(new.numel())
            num_edges.append(pos.numel())
            frontier = new
        node = torch.cat(nodes)
        self.local[node] = -1
        return SamplerOutput(node=node, row=torch.cat(rows), col=torch.cat(cols), edge=torch.cat(edges),
                             batch=None, num_sampled_nodes=num_nodes, num_sampled_edges=num_edges,
                             metadata=(index.input_id, index.time))

    def sample_from_edges(self, index, neg_sampling=None) -> SamplerOutput:
        """Link-level sampling is not needed by gnnrisk's node tasks."""
        raise NotImplementedError("VectorNeighborSampler samples around nodes only")

    @property
    def edge_permutation(self) -> Tensor | None:
        """Edge ids are returned in the original order already."""
        return None


def make_node_loader(data: Data, input_nodes: Tensor, num_neighbors: Sequence[int], batch_size: int,
                     shuffle: bool, seed: int) -> NodeLoader:
    """A mini-batch loader over `input_nodes`: PyG's NeighborLoader if its backends exist, else ours."""
    generator = torch.Generator().manual_seed(seed)
    if WITH_PYG_LIB or WITH_TORCH_SPARSE:
        from torch_geometric.loader import NeighborLoader
        return NeighborLoader(data, num_neighbors=list(num_neighbors), input_nodes=input_nodes,
                              batch_size=batch_size, shuffle=shuffle, generator=generator)
    sampler = VectorNeighborSampler(data, num_neighbors, seed=seed)
    return NodeLoader(data, node_sampler=sampler, input_nodes=input_nodes, batch_size=batch_size,
                      shuffle=shuffle, generator=generator)
