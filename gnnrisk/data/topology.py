"""Vectorised random-graph generators: degree-corrected SBM, Barabási–Albert, Holme–Kim, Watts–Strogatz.

Every generator returns an undirected edge list as a numpy array of shape [2, M] with u < v,
no self-loops and no duplicates. None loops over nodes or edges in Python; the only loops
are over a handful of rounds (top-ups, pointer-jumping steps).
"""

from __future__ import annotations

import numpy as np


def canonical_edges(u: np.ndarray, v: np.ndarray, num_nodes: int) -> np.ndarray:
    """Drop self-loops and duplicates, orient each pair as (min, max) and sort: shape [2, M]."""
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    keep = lo != hi
    key = np.sort(lo[keep].astype(np.int64) * num_nodes + hi[keep])
    if key.size:  # sort-based dedupe: much faster than np.unique's hash path on int64 keys
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack([key // num_nodes, key % num_nodes])


def merge_edges(a: np.ndarray, b: np.ndarray, num_nodes: int) -> np.ndarray:
    """Union of two canonical edge lists."""
    return canonical_edges(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), num_nodes)


def heavy_tailed_weights(num_nodes: int, exponent: float, mean_degree: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Pareto degree propensities with tail exponent `exponent`, capped at the structural cut-off."""
    theta = (1.0 - rng.random(num_nodes)) ** (-1.0 / (exponent - 1.0))
    expected = theta / theta.mean() * mean_degree
    cap = np.sqrt(num_nodes * mean_degree)  # structural cut-off keeps expected degrees below N
    return np.minimum(expected, cap)


def dcsbm_edges(community: np.ndarray, num_edges: int, theta: np.ndarray, mixing: float,
                rng: np.random.Generator, max_rounds: int = 20) -> np.ndarray:
    """Degree-corrected SBM: endpoints drawn proportional to `theta`, a share `mixing` across communities.

    Each edge picks u with probability proportional to theta; v is drawn proportional to theta
    inside u's community with probability 1 - mixing, otherwise from the whole graph.
    Rounds top up the edges lost to duplicates and self-loops until `num_edges` are reached.
    """
    n = community.shape[0]
    order = np.argsort(community, kind="stable")
    cum = np.cumsum(theta[order])
    total = cum[-1]
    num_comm = int(community.max()) + 1
    mass = np.bincount(community, weights=theta, minlength=num_comm)
    start = np.concatenate([[0.0], np.cumsum(mass)[:-1]])

    def draw(k: int) -> np.ndarray:
        u = order[np.minimum(np.searchsorted(cum, rng.random(k) * total), n - 1)]
        cu = community[u]
        within = rng.random(k) >= mixing
        target_mass = np.where(within, start[cu] + rng.random(k) * mass[cu], rng.random(k) * total)
        v = order[np.minimum(np.searchsorted(cum, target_mass), n - 1)]
        return canonical_edges(u, v, n)

    edges = draw(num_edges)
    for _ in range(max_rounds):
        missing = num_edges - edges.shape[1]
        if missing <= 0:
            break
        edges = merge_edges(edges, draw(int(missing * 1.1) + 16), n)
    if edges.shape[1] > num_edges:
        edges = edges[:, np.sort(rng.choice(edges.shape[1], num_edges, replace=False))]
    return edges


def barabasi_albert_edges(num_nodes: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Barabási–Albert preferential attachment by the Batagelj–Brandes copy model, vectorised.

    Slot 2j holds the new node of edge j; slot 2j+1 copies a uniformly random earlier slot,
    which is exactly degree-proportional attachment. The copy chains are resolved with
    pointer jumping (O(log chain length) vectorised steps) instead of a sequential loop.
    """
    num_edges = (num_nodes - 1) * m
    slots = 2 * num_edges
    j = np.arange(slots)
    new_node = j[0::2] // (2 * m) + 1  # edges of node t (t >= 1) occupy a block of m edges
    value = np.full(slots, -1, dtype=np.int64)
    value[0::2] = new_node
    value[1:2 * m:2] = 0  # node 1 can only attach to node 0, the seed of the process
    fixed = value >= 0
    ptr = j.copy()
    ptr[~fixed] = (rng.random(int((~fixed).sum())) * j[~fixed]).astype(np.int64)  # uniform in [0, j-1]
    while True:
        pending = ~fixed[ptr]
        if not pending.any():
            break
        ptr[pending] = ptr[ptr[pending]]
    target = value[ptr[1::2]]
    return canonical_edges(new_node, target, num_nodes)


def triadic_closure_edges(edges: np.ndarray, num_nodes: int, num_new: int,
                          rng: np.random.Generator, max_rounds: int = 20) -> np.ndarray:
    """Add `num_new` edges that close open triangles: pick a node, join two of its neighbours.

    Pivots are drawn uniformly among nodes with at least two ties of the input graph; the
    candidate pairs that already exist are discarded, and rounds top up until `num_new` are added.
    """
    if num_new <= 0:
        return edges
    added = closing_pairs(edges, num_nodes, num_new, rng, max_rounds)
    return merge_edges(edges, np.stack([added // num_nodes, added % num_nodes]), num_nodes)


def closing_pairs(edges: np.ndarray, num_nodes: int, num_new: int, rng: np.random.Generator,
                  max_rounds: int = 20) -> np.ndarray:
    """Sorted keys u * n + v (u < v) of up to `num_new` non-edges that close a triangle of `edges`."""
    if num_new <= 0:
        return np.empty(0, dtype=np.int64)
    src = np.concatenate([edges[0], edges[1]])
    dst = np.concatenate([edges[1], edges[0]])
    dst = dst[np.argsort(src, kind="stable")]
    deg = np.bincount(src, minlength=num_nodes)
    rowptr = np.concatenate([[0], np.cumsum(deg)])
    pivots = np.flatnonzero(deg >= 2)
    if pivots.size == 0:
        return np.empty(0, dtype=np.int64)
    original = edges[0] * num_nodes + edges[1]  # sorted, since `edges` is canonical
    added = np.empty(0, dtype=np.int64)
    for _ in range(max_rounds):
        missing = num_new - added.size
        if missing <= 0:
            break
        k = 2 * missing + 16
        p = pivots[rng.integers(0, pivots.size, k)]
        a = dst[rowptr[p] + (rng.random(k) * deg[p]).astype(np.int64)]
        b = dst[rowptr[p] + (rng.random(k) * deg[p]).astype(np.int64)]
        cand = canonical_edges(a, b, num_nodes)
        keys = cand[0] * num_nodes + cand[1]
        pos = np.minimum(np.searchsorted(original, keys), original.size - 1)
        keys = keys[original[pos] != keys]  # drop pairs that are already ties
        added = np.union1d(added, keys) if added.size else keys
    if added.size > num_new:
        added = np.sort(rng.choice(added, num_new, replace=False))
    return added


def watts_strogatz_edges(num_nodes: int, k: int, rewire_prob: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Watts–Strogatz: a ring where each node links to its k/2 nearest neighbours per side, then rewiring."""
    half = max(k // 2, 1)
    u = np.repeat(np.arange(num_nodes), half)
    v = (u + np.tile(np.arange(1, half + 1), num_nodes)) % num_nodes
    rewire = rng.random(u.shape[0]) < rewire_prob
    v = np.where(rewire, rng.integers(0, num_nodes, u.shape[0]), v)
    return canonical_edges(u, v, num_nodes)
