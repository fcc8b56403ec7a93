"""Topology generators: valid edge lists, and the structure each model promises."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from gnnrisk.data import topology as topo


def assert_canonical(edges: np.ndarray, n: int) -> None:
    """u < v, in range, no duplicates."""
    assert edges.shape[0] == 2
    assert (edges[0] < edges[1]).all()
    assert edges.min() >= 0 and edges.max() < n
    keys = edges[0] * n + edges[1]
    assert np.unique(keys).size == keys.size


def test_barabasi_albert_is_heavy_tailed_and_connected():
    rng = np.random.default_rng(0)
    n, m = 20000, 4
    e = topo.barabasi_albert_edges(n, m, rng)
    assert_canonical(e, n)
    deg = np.bincount(e.ravel(), minlength=n)
    assert (deg > 0).all()
    # multi-edges and self-loops of the copy model are dropped: a little under (n-1)m edges
    assert 0.95 * (n - 1) * m < e.shape[1] <= (n - 1) * m
    assert deg.max() > 20 * deg.mean()  # hubs: a power law, not a Poisson degree distribution
    # BA's degree exponent is 3: P(deg >= k) ~ k^-2, so the tail ratio between k and 2k is ~4
    tail = [(deg >= k).mean() for k in (20, 40)]
    assert 2.5 < tail[0] / tail[1] < 6.0
    g = nx.Graph(list(map(tuple, e.T)))
    assert nx.is_connected(g)


def test_dcsbm_mixing_matches_the_knob():
    rng = np.random.default_rng(1)
    n, c, mixing = 20000, 20, 0.3
    community = rng.integers(0, c, n)
    theta = topo.heavy_tailed_weights(n, 2.5, 10.0, rng)
    e = topo.dcsbm_edges(community, 100000, theta, mixing, rng)
    assert_canonical(e, n)
    assert e.shape[1] == 100000
    within = (community[e[0]] == community[e[1]]).mean()
    # within-community share: (1 - mixing) + mixing * P(a random endpoint lands in the same community)
    mass = np.bincount(community, weights=theta, minlength=c) / theta.sum()
    expected = (1 - mixing) + mixing * float((mass ** 2).sum())
    assert abs(within - expected) < 0.02


def test_triadic_closure_raises_clustering_and_keeps_original_edges():
    rng = np.random.default_rng(2)
    n = 3000
    community = rng.integers(0, 30, n)
    theta = topo.heavy_tailed_weights(n, 2.5, 10.0, rng)
    base = topo.dcsbm_edges(community, 10000, theta, 0.2, rng)
    closed = topo.triadic_closure_edges(base, n, 5000, rng)
    assert_canonical(closed, n)
    assert closed.shape[1] == 15000
    base_keys, closed_keys = base[0] * n + base[1], closed[0] * n + closed[1]
    assert np.isin(base_keys, closed_keys).all()
    c0 = nx.average_clustering(nx.Graph(list(map(tuple, base.T))))
    c1 = nx.average_clustering(nx.Graph(list(map(tuple, closed.T))))
    assert c1 > 1.5 * c0


def test_watts_strogatz_ring_and_rewiring():
    rng = np.random.default_rng(3)
    n, k = 5000, 10
    lattice = topo.watts_strogatz_edges(n, k, 0.0, rng)
    assert lattice.shape[1] == n * k // 2
    assert nx.average_clustering(nx.Graph(list(map(tuple, lattice.T)))) == pytest.approx(2 / 3, abs=1e-9)
    rewired = topo.watts_strogatz_edges(n, k, 0.2, rng)
    assert_canonical(rewired, n)
    ring_dist = np.minimum((rewired[1] - rewired[0]) % n, (rewired[0] - rewired[1]) % n)
    long_share = (ring_dist > k // 2).mean()
    # a rewired edge lands beyond the lattice neighbourhood with probability ~1 - k/n
    assert abs(long_share - 0.2) < 0.02
