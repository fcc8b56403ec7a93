"""cSBM loader: GPR-GNN's parametrisation, the graph and feature signals it implies, determinism, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.csbm import _pairs_in_block, csbm_parameters, load_csbm, triangle_pair
from gnnrisk.errors import ConfigError


def _cfg(**extra: object) -> DictConfig:
    """The csbm config with overrides (`split` replaced whole when given)."""
    base = {"name": "csbm", "num_nodes": 2000, "avg_degree": 10, "num_features": 50, "phi": 0.5,
            "epsilon": 3.25, "split": {"train": 0.6, "val": 0.2, "inductive_fraction": 0.5}}
    return OmegaConf.create({**base, **extra})


def _within_share(data, y: torch.Tensor | None = None) -> float:
    """Share of edges whose two ends have the same class (edge homophily)."""
    y = data.y if y is None else y
    return float((y[data.edge_index[0]] == y[data.edge_index[1]]).float().mean())


def _expected_within_share(n: int, d: float, lam: float) -> float:
    """E[within-class edges] / E[edges], two classes of n / 2: rate c_in/n on n(n-2)/4 pairs, c_out/n on n^2/4."""
    c_in, c_out = d + lam * math.sqrt(d), d - lam * math.sqrt(d)
    within, across = c_in * (n - 2) / 4, c_out * n / 4
    return within / (within + across)


def test_parameters_follow_gpr_gnn() -> None:
    """lambda = sqrt(1+eps) sin(pi phi/2), mu = sqrt(n/p (1+eps)) cos(pi phi/2): on the ellipse 1 + eps."""
    lam, mu = csbm_parameters(1.0, 3.25, 30000, 2000)
    assert lam == pytest.approx(math.sqrt(4.25)) and mu == pytest.approx(0.0, abs=1e-12)
    lam, mu = csbm_parameters(0.0, 3.25, 30000, 2000)
    assert lam == 0.0 and mu == pytest.approx(math.sqrt(15 * 4.25))
    lam, mu = csbm_parameters(-0.5, 3.25, 3000, 200)
    assert lam == pytest.approx(-math.sqrt(4.25) * math.sqrt(0.5))
    for phi in np.linspace(-1, 1, 9):
        lam, mu = csbm_parameters(float(phi), 3.25, 3000, 200)
        assert lam ** 2 + mu ** 2 / (3000 / 200) == pytest.approx(4.25)


def test_contract_sizes_and_shuffled_ids() -> None:
    """Equal classes, an undirected coalesced loop-free graph, all masks, and ids that hide the class."""
    data = build_dataset(_cfg(), seed=0)
    assert data.name == "csbm" and data.num_nodes == 2000
    assert data.x.dtype == torch.float32 and data.x.shape == (2000, 50)
    assert torch.bincount(data.y).tolist() == [1000, 1000]
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert torch.equal(coalesce(data.edge_index, num_nodes=2000), data.edge_index)  # sorted, no duplicates
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (1200, 400, 400)
    assert not (data.train_mask & data.val_mask).any() and not (data.val_mask & data.test_mask).any()
    assert not (data.ind_train_mask & data.ind_test_mask).any() and (data.ind_train_mask | data.ind_test_mask).all()
    # the reference code keeps the classes in two blocks of ids; here the first half holds both
    assert 0.4 < float(data.y[:1000].float().mean()) < 0.6
    odd = load_csbm(_cfg(num_nodes=2001), seed=0)
    assert torch.bincount(odd.y).tolist() == [1001, 1000]


def test_same_seed_same_data() -> None:
    """The same seed gives an identical Data; another seed another graph, features and split."""
    a, b, c = load_csbm(_cfg(), 7), load_csbm(_cfg(), 7), load_csbm(_cfg(), 8)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask", "ind_train_mask", "ind_test_mask"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a.x, c.x) and not torch.equal(a.train_mask, c.train_mask)
    assert a.edge_index.shape != c.edge_index.shape or not torch.equal(a.edge_index, c.edge_index)


def test_block_sampler_covers_every_pair_once() -> None:
    """With probability 1 a block yields each of its pairs exactly once; the numbering inverts at large t."""
    i, j = _pairs_in_block(40, 1.0, np.random.default_rng(0))
    assert len(set(zip(i.tolist(), j.tolist()))) == i.size == 40 * 39 // 2 and bool((j < i).all())
    k = np.array([2, 3, 10**6, 10**8, 10**9], dtype=np.int64)
    t = np.concatenate([k * (k - 1) // 2 - 1, k * (k - 1) // 2, k * (k - 1) // 2 + 1])
    i, j = triangle_pair(t)
    assert np.array_equal(i * (i - 1) // 2 + j, t) and bool(((j >= 0) & (j < i)).all())


@pytest.mark.parametrize("phi", [-1.0, -0.5, 0.0, 0.5, 1.0])
def test_edge_homophily_and_degree_track_phi(phi: float) -> None:
    """Within-class share 1/2 + lambda/(2 sqrt d) (4 std: 0.02 at 10,000 edges) and mean degree d (4 std: 0.4)."""
    data = load_csbm(_cfg(phi=phi, num_features=2), seed=11)
    lam, _ = csbm_parameters(phi, 3.25, 2000, 2)
    share = _within_share(data)
    assert share == pytest.approx(_expected_within_share(2000, 10, lam), abs=0.02)
    assert data.edge_index.size(1) / 2000 == pytest.approx(10, abs=0.4)
    if phi == 1.0:
        assert share > 0.78  # mostly within-class edges
        # the statistic can fail: the same graph read with shuffled labels sits at 1/2
        shuffled = data.y[torch.randperm(2000, generator=torch.Generator().manual_seed(0))]
        assert abs(_within_share(data, shuffled) - 0.5) < 0.03
    elif phi == -1.0:
        assert share < 0.22  # mostly across-class edges
    elif phi == 0.0:
        assert abs(share - 0.5) < 0.02  # the graph carries no label information


def _mean_difference_accuracy(data) -> float:
    """Test accuracy of the class-mean-difference classifier fitted on the training nodes."""
    x, y, tr, te = data.x.double(), data.y, data.train_mask, data.test_mask
    m1, m0 = x[tr & (y == 1)].mean(0), x[tr & (y == 0)].mean(0)
    score = (x[te] - (m1 + m0) / 2) @ (m1 - m0)
    return float(((score > 0).long() == y[te]).float().mean())


def test_feature_signal_follows_mu() -> None:
    """phi = 0 puts all signal in the features (oracle accuracy Phi(sqrt(mu p / n)) ~ 0.77 here); |phi| = 1 none."""
    cfg = dict(num_nodes=3000, num_features=200)
    informative = _mean_difference_accuracy(load_csbm(_cfg(phi=0.0, **cfg), seed=3))
    assert informative > 0.68  # 600 test nodes: chance would be 0.50 +- 0.02
    for phi in (1.0, -1.0):
        assert abs(_mean_difference_accuracy(load_csbm(_cfg(phi=phi, **cfg), seed=3)) - 0.5) < 0.07


@pytest.mark.parametrize("override, field", [
    ({"phi": 2}, "data.phi"),
    ({"phi": "high"}, "data.phi"),
    ({"num_nodes": 0}, "data.num_nodes"),
    ({"num_nodes": 100.5}, "data.num_nodes"),
    ({"avg_degree": 2000}, "data.avg_degree"),
    ({"avg_degree": 0}, "data.avg_degree"),
    ({"avg_degree": 2, "phi": 1.0}, "data.avg_degree"),  # lambda^2 = 4.25 > d: negative across-class rate
    ({"num_features": 0}, "data.num_features"),
    ({"epsilon": -2}, "data.epsilon"),
    ({"epsilon": None}, "data.epsilon"),
    ({"split": {"train": 1.2, "val": 0.1}}, "data.split.train"),
    ({"split": {"train": 0.6, "val": 0.5}}, "data.split.train+data.split.val"),
    ({"split": {"train": 0.6, "val": 0.2, "inductive_fraction": 1.0}}, "data.split.inductive_fraction"),
])
def test_bad_input_names_the_field(override: dict, field: str) -> None:
    """Each bad value is refused before generation with a one-line ConfigError naming its field."""
    with pytest.raises(ConfigError) as err:
        build_dataset(_cfg(**override), seed=0)
    assert err.value.field == field and "\n" not in str(err.value)


def test_smallest_degree_that_fits_phi_one() -> None:
    """At lambda^2 = d exactly the across-class rate is 0: every edge lies within a class."""
    data = load_csbm(_cfg(phi=1.0, epsilon=3.0, avg_degree=4, num_features=2), seed=0)
    assert _within_share(data) == 1.0
