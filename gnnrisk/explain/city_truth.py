"""Which typed links of a city snapshot carry a planted trigger, and which links a GNN can read.

Ground truth (the planted process, `incident.parent` and `incident.cause`). A node c of the target
type is explained at origin t: the model reads the snapshot at t (recorded incidents of periods <= t)
and forecasts period t + 1. Its *triggers* are the snapshot incidents a that are the parent of an
incident (recorded or not) of period t + 1 at c (place target, cause near_repeat) or involving c
(person target, cause social). A trigger a, at place q_a and involving person j_a, makes these
snapshot edges true for c, in both directions of each link:

- place p (near_repeat): `occurred_at` (a -> q_a) and `rev_occurred_at` (q_a -> a), the trigger's
  place link; and, when q_a != p is a grid neighbour of p, `adjacent` (q_a -> p) and (p -> q_a), the
  link the near-repeat crossed (a trigger two or more cells away adds no adjacent edge);
- person i (social): `knows` (j_a -> i) and (i -> j_a), the tie the offspring followed; and
  `involved_in` (j_a -> a) and `rev_involved_in` (a -> j_a), the trigger's person link.

Only edges of c's *computation subgraph* are scored: with L message-passing layers, the edges whose
destination lies within L - 1 hops of c (messages flow source -> destination over every relation),
so every edge that can change c's output. With L = 2 that excludes, e.g., `involved_in` (j_a -> a)
for a person (a is two hops from i) and the links of a trigger two cells from a place; the counts of
true links before (`planted`) and after (`in reach`) this cut are reported per relation. A node is
*eligible* when at least one true edge lies in its computation subgraph.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from gnnrisk.train.city_forecast import Record

NEAR_REPEAT, SOCIAL = 1, 2
# Relations that can hold a true link, per target type.
TRUTH_RELATIONS: dict[str, tuple[str, ...]] = {"place": ("occurred_at", "rev_occurred_at", "adjacent"),
                                               "person": ("knows", "involved_in", "rev_involved_in")}
EdgeType = tuple[str, str, str]


def relation(snap: HeteroData, name: str) -> EdgeType:
    """The edge type whose relation is called `name` (relation names are unique in the city)."""
    return next(et for et in snap.edge_types if et[1] == name)


def _other_end(data: HeteroData, name: str, side: int) -> Tensor:
    """For a relation with one edge per incident: the other end of each incident's edge, by incident id."""
    ei = data[relation(data, name)].edge_index
    out = torch.full((data["incident"].num_nodes,), -1, dtype=torch.long)
    out[ei[side]] = ei[1 - side]
    return out


def _edge_of(edge_index: Tensor, end: int, num: int) -> Tensor:
    """Per node at `end` (0 source, 1 destination) of a relation with one edge per such node: its edge id."""
    out = torch.full((num,), -1, dtype=torch.long)
    out[edge_index[end]] = torch.arange(edge_index.size(1))
    return out


def find_edges(edge_index: Tensor, src: Tensor, dst: Tensor, num_dst: int) -> Tensor:
    """Ids of the edges (src[i] -> dst[i]) in `edge_index`, -1 where there is none."""
    query = src * num_dst + dst
    if edge_index.size(1) == 0:
        return torch.full_like(query, -1)
    keys = edge_index[0] * num_dst + edge_index[1]
    order = torch.argsort(keys)
    ordered = keys[order]
    pos = torch.searchsorted(ordered, query).clamp(max=ordered.numel() - 1)
    return torch.where(ordered[pos] == query, order[pos], torch.full_like(query, -1))


def snapshot_rows(record: Record, origin: int, num_incidents: int) -> Tensor:
    """Per incident id: its node id in the snapshot at `origin` (as `snapshot` numbers them), -1 if not in it."""
    seen = record.index[record.period <= origin]
    out = torch.full((num_incidents,), -1, dtype=torch.long)
    out[seen] = torch.arange(seen.numel())
    return out


def _pairs(node: Tensor, edge: Tensor) -> Tensor:
    """Distinct (node, edge) pairs [2, K] with an edge found (edge >= 0), sorted."""
    pairs = torch.stack([node, edge])[:, edge >= 0]
    return torch.unique(pairs, dim=1) if pairs.size(1) else pairs


def true_links(data: HeteroData, record: Record, snap: HeteroData, origin: int, target: str) -> dict[str, Tensor]:
    """Per relation of TRUTH_RELATIONS[target]: the true (target node, snapshot edge id) pairs [2, K], all nodes."""
    inc = data["incident"]
    rows = snapshot_rows(record, origin, inc.num_nodes)
    cause = NEAR_REPEAT if target == "place" else SOCIAL
    offspring = (inc.period == origin + 1) & (inc.cause == cause) & (inc.parent >= 0)
    parent = inc.parent[offspring]
    kept = rows[parent] >= 0  # the trigger is in the snapshot (recorded, period <= origin)
    offspring_ids, parent, trigger = offspring.nonzero().flatten()[kept], parent[kept], rows[parent[kept]]
    m = snap["incident"].num_nodes
    if target == "place":
        where = _other_end(data, "occurred_at", 0)
        p, q = where[offspring_ids], where[parent]
        occ, rev = snap[relation(snap, "occurred_at")], snap[relation(snap, "rev_occurred_at")]
        adj, num_places = snap[relation(snap, "adjacent")].edge_index, snap["place"].num_nodes
        moved = q != p
        return {"occurred_at": _pairs(p, _edge_of(occ.edge_index, 0, m)[trigger]),
                "rev_occurred_at": _pairs(p, _edge_of(rev.edge_index, 1, m)[trigger]),
                "adjacent": _pairs(torch.cat([p[moved], p[moved]]),
                                   torch.cat([find_edges(adj, q[moved], p[moved], num_places),
                                              find_edges(adj, p[moved], q[moved], num_places)]))}
    who = _other_end(data, "involved_in", 1)
    i, j = who[offspring_ids], who[parent]
    knows, n = snap[relation(snap, "knows")].edge_index, snap["person"].num_nodes
    inv, rev = snap[relation(snap, "involved_in")], snap[relation(snap, "rev_involved_in")]
    return {"knows": _pairs(torch.cat([i, i]), torch.cat([find_edges(knows, j, i, n), find_edges(knows, i, j, n)])),
            "involved_in": _pairs(i, _edge_of(inv.edge_index, 1, m)[trigger]),
            "rev_involved_in": _pairs(i, _edge_of(rev.edge_index, 0, m)[trigger])}


def reach(snap: HeteroData, target: str, centers: Tensor, hops: int) -> dict[str, Tensor]:
    """Per node type, bool [C, N]: the nodes within `hops` hops of each center (source -> destination), vectorised."""
    out = {t: torch.zeros(centers.numel(), snap[t].num_nodes, dtype=torch.bool) for t in snap.node_types}
    out[target][torch.arange(centers.numel()), centers] = True
    for _ in range(hops):  # hops, then relation types; each step over all centers and edges at once
        step = {t: v.float() for t, v in out.items()}
        for src, rel, dst in snap.edge_types:
            ei = snap[src, rel, dst].edge_index
            step[src] = step[src].index_add(1, ei[0], out[dst][:, ei[1]].float())
        out = {t: v > 0 for t, v in step.items()}
    return out


def computation_edges(snap: HeteroData, target: str, centers: Tensor, num_layers: int) -> dict[EdgeType, Tensor]:
    """Per edge type, bool [C, E]: the edges whose destination is within num_layers - 1 hops of each center."""
    near = reach(snap, target, centers, num_layers - 1)
    return {et: near[et[2]][:, snap[et].edge_index[1]] for et in snap.edge_types}


def truth_in_reach(snap: HeteroData, target: str, links: dict[str, Tensor], centers: Tensor,
                   comp: dict[EdgeType, Tensor]) -> dict[str, Tensor]:
    """Per truth relation, bool [C, E]: the true edges of each center that lie in its computation subgraph."""
    slot = torch.full((snap[target].num_nodes,), -1, dtype=torch.long)
    slot[centers] = torch.arange(centers.numel())
    out = {}
    for name, pairs in links.items():  # the target's few truth relations
        et = relation(snap, name)
        flags = torch.zeros_like(comp[et])
        row = slot[pairs[0]]
        flags[row[row >= 0], pairs[1][row >= 0]] = True
        out[name] = flags & comp[et]
    return out


def eligible_nodes(snap: HeteroData, target: str, links: dict[str, Tensor], num_layers: int) -> Tensor:
    """Ids of the target nodes with at least one true edge in their computation subgraph, sorted."""
    candidates = torch.unique(torch.cat([p[0] for p in links.values()]))
    if not candidates.numel():
        return candidates
    comp = computation_edges(snap, target, candidates, num_layers)
    truth = truth_in_reach(snap, target, links, candidates, comp)
    return candidates[torch.stack([t.any(1) for t in truth.values()]).any(0)]
