"""The contextual stochastic block model (cSBM): two classes, a graph signal and a feature signal.

Deshpande, Sen, Montanari & Mossel (NeurIPS 2018) define it; GPR-GNN (Chien et al., ICLR 2021,
`src/cSBM_dataset.py`) parametrises it by one angle phi, and DPDGC (Chien et al., NeurIPS 2023) reuses
that code unchanged. The model, as that code draws it (sizes n nodes, average degree d, p features):

- labels y_i in {-1, +1}, two classes of equal size (class index (y + 1) / 2: -1 -> 0, +1 -> 1);
- each unordered pair {i, j} is an edge independently with probability c_in / n when y_i = y_j and
  c_out / n otherwise, where c_in = d + lambda * sqrt(d) and c_out = d - lambda * sqrt(d);
- features x_i = sqrt(mu / n) * y_i * u + Z_i / sqrt(p), with u ~ N(0, I_p / p) shared by all nodes
  and Z_i ~ N(0, I_p) drawn per node;
- lambda and mu from phi in [-1, 1] and epsilon (the excess over the detection threshold
  lambda^2 + mu^2 / xi = 1, xi = n / p, Deshpande et al.'s claim 3):
      lambda = sqrt(1 + epsilon) * sin(pi * phi / 2)
      mu     = sqrt(xi * (1 + epsilon)) * cos(pi * phi / 2)
  so lambda^2 + mu^2 / xi = 1 + epsilon for every phi. phi = 1: all signal in the graph, homophilous
  (lambda > 0); phi = -1: all in the graph, heterophilous (lambda < 0, more edges across classes);
  phi = 0: all in the features, the graph is an Erdos-Renyi graph that carries no label information.

Differences from the reference code, none of which changes the model: the classes are exactly n // 2
and n - n // 2 nodes (the reference gives n / 2 + 1 and n / 2 - 1), node ids are shuffled (the
reference keeps the classes in blocks), and edges are drawn per block pair (a binomial count, then
that many distinct pairs uniformly), which is the same distribution as its loop over all n^2 / 2
pairs, in O(edges) time and memory instead of O(n^2) time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.data.splits import attach_splits, check_shares
from gnnrisk.errors import ConfigError, check_number


def csbm_parameters(phi: float, epsilon: float, num_nodes: int, num_features: int) -> tuple[float, float]:
    """(lambda, mu) of GPR-GNN's parametrisation: lambda^2 + mu^2 / xi = 1 + epsilon, xi = n / p."""
    xi = num_nodes / num_features
    angle = math.pi * phi / 2
    return math.sqrt(1 + epsilon) * math.sin(angle), math.sqrt(xi * (1 + epsilon)) * math.cos(angle)


def validate(cfg: DictConfig) -> tuple[int, float, int, float, float]:
    """Check every field of `data=csbm` before anything is drawn; return n, d, p, lambda, mu."""
    n = check_number("data.num_nodes", cfg.get("num_nodes"), low=10, integer=True)
    # c_in <= 2d: an edge probability c_in / n above 1 is impossible, so d <= n / 2.
    d = check_number("data.avg_degree", cfg.get("avg_degree"), low=0.0, high=n / 2, low_open=True)
    p = check_number("data.num_features", cfg.get("num_features"), low=1, integer=True)
    phi = check_number("data.phi", cfg.get("phi"), low=-1.0, high=1.0)
    epsilon = check_number("data.epsilon", cfg.get("epsilon"), low=-1.0)
    split = cfg.get("split") or {}
    check_shares(split.get("train"), split.get("val"))
    check_number("data.split.inductive_fraction", split.get("inductive_fraction", 0.5),
                 low=0.0, high=1.0, low_open=True, high_open=True)
    lam, mu = csbm_parameters(phi, epsilon, n, p)
    if lam * lam > d * (1 + 1e-12):  # c_out = d - |lambda| sqrt(d) would be a negative edge rate
        raise ConfigError("data.avg_degree", cfg.get("avg_degree"),
                          f"expected at least lambda^2 = (1 + epsilon) sin^2(pi phi / 2) = {lam * lam:.4g} "
                          f"(data.phi={phi:g}, data.epsilon={epsilon:g}), else the edge probability "
                          "d - |lambda| sqrt(d) is negative; raise it or lower data.epsilon")
    return n, d, p, lam, mu


def _pairs_in_block(size: int, prob: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each unordered pair of `size` nodes independently with `prob`: local ids (i > j)."""
    total = size * (size - 1) // 2
    count = rng.binomial(total, min(max(prob, 0.0), 1.0))
    return triangle_pair(rng.choice(total, size=count, replace=False).astype(np.int64))


def triangle_pair(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pair (i, j), 0 <= j < i, numbered t = i (i - 1) / 2 + j: the inverse of that numbering."""
    i = np.floor((1.0 + np.sqrt(1.0 + 8.0 * t)) / 2.0).astype(np.int64)
    i -= i * (i - 1) // 2 > t  # float rounding can be one off either way for large t
    i += (i + 1) * i // 2 <= t
    return i, t - i * (i - 1) // 2


def _pairs_across(size_a: int, size_b: int, prob: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each pair (a, b) of the two node sets independently with `prob`: local ids."""
    total = size_a * size_b
    count = rng.binomial(total, min(max(prob, 0.0), 1.0))
    t = rng.choice(total, size=count, replace=False).astype(np.int64)
    return t // size_b, t % size_b


def csbm_edges(n0: int, n1: int, p_in: float, p_out: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (u, v) of a two-block SBM, nodes 0..n0-1 in block 0 and n0..n0+n1-1 in block 1."""
    u0, v0 = _pairs_in_block(n0, p_in, rng)
    u1, v1 = _pairs_in_block(n1, p_in, rng)
    ua, vb = _pairs_across(n0, n1, p_out, rng)
    return np.concatenate([u0, u1 + n0, ua]), np.concatenate([v0, v1 + n0, vb + n0])


def load_csbm(cfg: DictConfig, seed: int) -> Data:
    """Draw the cSBM that `cfg` (the `data` config group) describes for `seed`."""
    n, d, p, lam, mu = validate(cfg)
    rng = np.random.default_rng(seed)
    n0 = n - n // 2  # class 0 (y = -1) gets the odd node
    c_in, c_out = d + lam * math.sqrt(d), d - lam * math.sqrt(d)
    u, v = csbm_edges(n0, n // 2, c_in / n, c_out / n, rng)

    # Shuffle node ids so that id order says nothing about the class: block node k becomes perm[k].
    perm = rng.permutation(n)
    u, v = perm[u], perm[v]
    keys = np.concatenate([u * n + v, v * n + u])  # both directions; pairs are distinct, no loops
    keys.sort()  # by source, then target: PyG's coalesced order
    edge_index = np.stack([keys // n, keys % n])
    y = np.empty(n, dtype=np.int64)
    y[perm] = (np.arange(n) >= n0).astype(np.int64)

    # x_i = sqrt(mu / n) y_i u + Z_i / sqrt(p), built in place in float32 (n x p is the big array).
    centre = (rng.standard_normal(p) / math.sqrt(p) * math.sqrt(mu / n)).astype(np.float32)
    x = rng.standard_normal((n, p), dtype=np.float32)
    x *= np.float32(1.0 / math.sqrt(p))
    np.add(x, centre, out=x, where=(y == 1)[:, None])
    np.subtract(x, centre, out=x, where=(y == 0)[:, None])

    data = Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(edge_index), y=torch.from_numpy(y),
                num_nodes=n)
    data.name = "csbm"
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    attach_splits(data, cfg.split, gen)
    return data
