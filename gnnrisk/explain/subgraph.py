"""The part of the graph a K-layer message-passing model reads when it scores one node."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class NodeSubgraph:
    """A target node's neighbourhood, relabelled, with the map back to the full graph.

    `edge_index` holds every edge that points into the target's K-hop set (messages flow
    source -> target), so that degree-normalised models (GCN) see exactly the degrees they see
    on the full graph and the target's output is unchanged. `edge_ids` are the global ids of
    those edges; `computation_mask` marks the edges that can reach the target within K hops
    (their head is at distance <= K-1): only those can matter, and only those are scored.
    """

    nodes: Tensor            # global ids of the subgraph's nodes
    edge_index: Tensor       # [2, e] local node ids
    edge_ids: Tensor         # [e] global edge ids
    center: int              # local id of the target node
    computation_mask: Tensor  # [e] bool


def hop_distances(node: int, num_hops: int, edge_index: Tensor, num_nodes: int) -> Tensor:
    """Hops from each node to `node` along message direction (source -> target); num_hops+1 = farther."""
    dist = torch.full((num_nodes,), num_hops + 1, dtype=torch.long, device=edge_index.device)
    dist[node] = 0
    src, dst = edge_index
    for hop in range(1, num_hops + 1):
        reached = src[dist[dst] == hop - 1]
        dist[reached] = torch.minimum(dist[reached], torch.full_like(reached, hop))
    return dist


def node_subgraph(node: int, num_hops: int, edge_index: Tensor, num_nodes: int) -> NodeSubgraph:
    """The K-hop computation subgraph of `node`, plus the edges that fix its boundary degrees."""
    dist = hop_distances(node, num_hops, edge_index, num_nodes)
    head_dist = dist[edge_index[1]]
    keep = head_dist <= num_hops
    edge_ids = keep.nonzero().flatten()
    sub = edge_index[:, edge_ids]
    nodes = torch.unique(torch.cat([sub.flatten(), torch.tensor([node], device=sub.device)]))
    local = torch.full((num_nodes,), -1, dtype=torch.long, device=sub.device)
    local[nodes] = torch.arange(nodes.numel(), device=sub.device)
    return NodeSubgraph(nodes=nodes, edge_index=local[sub], edge_ids=edge_ids, center=int(local[node]),
                        computation_mask=head_dist[edge_ids] <= num_hops - 1)


def full_graph(node: int, num_hops: int, edge_index: Tensor, num_nodes: int) -> NodeSubgraph:
    """The whole graph viewed as `node`'s subgraph (the slow reference the K-hop view is checked against)."""
    dist = hop_distances(node, num_hops, edge_index, num_nodes)
    return NodeSubgraph(nodes=torch.arange(num_nodes, device=edge_index.device), edge_index=edge_index,
                        edge_ids=torch.arange(edge_index.size(1), device=edge_index.device), center=node,
                        computation_mask=dist[edge_index[1]] <= num_hops - 1)


def tie_ids(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Per directed edge, the id (0..T-1) of its undirected tie: u->v and v->u share one id."""
    key = torch.minimum(edge_index[0], edge_index[1]) * num_nodes + torch.maximum(edge_index[0], edge_index[1])
    return torch.unique(key, return_inverse=True)[1]
