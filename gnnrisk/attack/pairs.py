"""Node pairs for link attacks: edges of the original graph and random non-edges, as undirected keys."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnrisk.errors import ConfigError


def pair_keys(u: Tensor, v: Tensor, num_nodes: int) -> Tensor:
    """One integer per unordered pair {u, v}."""
    return torch.minimum(u, v) * num_nodes + torch.maximum(u, v)


def undirected_edges(edge_index: Tensor) -> Tensor:
    """Each undirected edge once, as [2, E/2] with row 0 < row 1."""
    return edge_index[:, edge_index[0] < edge_index[1]]


def check_edge_count(field: str, count: int, edge_index: Tensor) -> None:
    """A ConfigError when `count` undirected edges cannot be drawn from the graph."""
    available = int((edge_index[0] < edge_index[1]).sum())
    if count > available:
        raise ConfigError(field, count, f"expected at most {available} (the graph's undirected edges)")


def sample_edges(edge_index: Tensor, count: int, generator: torch.Generator, field: str) -> Tensor:
    """`count` distinct undirected edges drawn uniformly, [2, count]."""
    check_edge_count(field, count, edge_index)
    edges = undirected_edges(edge_index.cpu())
    return edges[:, torch.randperm(edges.size(1), generator=generator)[:count]]


def sample_non_edges(edge_index: Tensor, num_nodes: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` distinct random node pairs that are not edges (and not self-pairs), [2, count].

    torch_geometric.utils.negative_sampling takes no generator; this draws from a seeded one.
    """
    existing = pair_keys(edge_index[0].cpu(), edge_index[1].cpu(), num_nodes)
    found = torch.empty(0, dtype=torch.long)
    while found.numel() < count:
        draw = torch.randint(0, num_nodes, (2, 2 * count + 16), generator=generator)
        keys = pair_keys(draw[0], draw[1], num_nodes)
        keys = keys[(draw[0] != draw[1]) & ~torch.isin(keys, existing)]
        found = _unique_in_order(torch.cat([found, keys]))
    found = found[:count]
    return torch.stack([found // num_nodes, found % num_nodes])


def _unique_in_order(keys: Tensor) -> Tensor:
    """Distinct values of `keys`, keeping the first occurrence order (so draws stay seeded)."""
    uniq, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
    return keys[first.sort().values]


def balanced_pairs(edge_index: Tensor, num_nodes: int, count: int, generator: torch.Generator,
                   field: str) -> tuple[Tensor, Tensor]:
    """`count` edges and `count` non-edges: pairs [2, 2*count] and labels (1 = edge)."""
    pos = sample_edges(edge_index, count, generator, field)
    neg = sample_non_edges(edge_index, num_nodes, count, generator)
    labels = torch.cat([torch.ones(count), torch.zeros(count)]).bool()
    return torch.cat([pos, neg], dim=1), labels


def edges_among(edge_index: Tensor, nodes: Tensor, num_nodes: int) -> Tensor:
    """Boolean [n, n] adjacency of the original graph restricted to `nodes` (in their order)."""
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[nodes] = torch.arange(nodes.numel())
    src, dst = local[edge_index[0].cpu()], local[edge_index[1].cpu()]
    keep = (src >= 0) & (dst >= 0)
    adj = torch.zeros(nodes.numel(), nodes.numel(), dtype=torch.bool)
    adj[src[keep], dst[keep]] = True
    return adj
