"""The vectorised neighbour sampler behind mini-batch training on a plain pip install."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.sampler import NodeSamplerInput
from torch_geometric.utils import to_undirected

from gnnrisk.train.sampler import VectorNeighborSampler


def star_plus_random(n: int = 400, seed: int = 0) -> Data:
    """Node 0 has 40 neighbours; the rest is a sparse random graph."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(1, n, (1500,), generator=g)
    dst = torch.randint(1, n, (1500,), generator=g)
    keep = src != dst
    hub = torch.stack([torch.zeros(40, dtype=torch.long), torch.arange(1, 41)])
    ei = to_undirected(torch.cat([torch.stack([src[keep], dst[keep]]), hub], dim=1), num_nodes=n)
    return Data(x=torch.randn(n, 3), edge_index=ei, y=torch.zeros(n, dtype=torch.long), num_nodes=n)


def test_fanout_bounds_and_edges_exist():
    data = star_plus_random()
    sampler = VectorNeighborSampler(data, [5, 3], seed=0)
    seeds = torch.arange(0, 50)
    out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=seeds))
    assert torch.equal(out.node[:50], seeds)  # seeds first
    assert out.node.unique().numel() == out.node.numel()
    original = set(zip(data.edge_index[0].tolist(), data.edge_index[1].tolist()))
    src, dst = out.node[out.row], out.node[out.col]
    assert all((s, t) in original for s, t in zip(src.tolist(), dst.tolist()))
    # the returned edge ids point at the same edges in the original edge_index
    assert torch.equal(data.edge_index[0, out.edge], src) and torch.equal(data.edge_index[1, out.edge], dst)
    # hop 1: each seed gets min(in-degree, 5) distinct neighbours
    hop1 = out.num_sampled_edges[0]
    per_seed = torch.bincount(out.col[:hop1], minlength=50)
    indeg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)[seeds]
    assert torch.equal(per_seed, torch.clamp(indeg, max=5))
    assert sampler.local.eq(-1).all()  # the scratch map is reset for the next batch


def test_neighbours_are_drawn_uniformly():
    data = star_plus_random()
    sampler = VectorNeighborSampler(data, [5], seed=1)
    counts = torch.zeros(data.num_nodes)
    trials = 2000
    for _ in range(trials):
        out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=torch.tensor([0])))
        counts.index_add_(0, out.node[out.row], torch.ones(out.row.numel()))
    neighbours = data.edge_index[0, data.edge_index[1] == 0]
    observed = counts[neighbours].numpy()
    assert observed.sum() == 5 * trials
    expected = np.full(neighbours.numel(), 5 * trials / neighbours.numel())
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_plugs_into_pyg_node_loader():
    data = star_plus_random()
    data.y = torch.arange(data.num_nodes)
    loader = NodeLoader(data, node_sampler=VectorNeighborSampler(data, [4, 4]), input_nodes=torch.arange(100),
                        batch_size=32, shuffle=False)
    batches = list(loader)
    assert sum(b.batch_size for b in batches) == 100
    first = batches[0]
    assert torch.equal(first.y[: first.batch_size], torch.arange(32))  # node attributes follow the nodes
    assert first.edge_index.max() < first.num_nodes
