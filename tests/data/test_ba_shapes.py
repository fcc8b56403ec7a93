"""BA-Shapes generator: sizes, labels, ground-truth motif edges, noise edges and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.ba_shapes import load_ba_shapes
from gnnrisk.errors import ConfigError


def _cfg(**extra: object) -> DictConfig:
    """The default BA-Shapes config, with overrides."""
    base = {"name": "ba_shapes", "base_nodes": 300, "base_m": 5, "num_motifs": 80,
            "noise_edge_fraction": 0.01, "feature_dim": 10, "split": {"train": 0.8, "val": 0.1}}
    return OmegaConf.create({**base, **extra})


def _edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    """Directed edges as a set of pairs."""
    return set(map(tuple, edge_index.t().tolist()))


def test_sizes_labels_and_contract() -> None:
    """700 nodes; labels 300 base, 160 upper corners, 160 bottom corners, 80 roofs; contract holds."""
    data = build_dataset(_cfg(), seed=0)
    assert data.num_nodes == 700
    assert torch.bincount(data.y).tolist() == [300, 160, 160, 80]
    assert data.x.dtype == torch.float32 and data.x.shape == (700, 10) and bool((data.x == 1).all())
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert torch.equal(coalesce(data.edge_index, num_nodes=700), data.edge_index)
    assert data.causal_edge_mask.dtype == torch.bool
    assert data.causal_edge_mask.shape == (data.edge_index.size(1),)
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (560, 70, 70)
    assert not (data.ind_train_mask & data.ind_test_mask).any()
    assert (data.ind_train_mask | data.ind_test_mask).all()
    assert data.name == "ba_shapes"


def test_causal_edges_are_the_house_edges() -> None:
    """Exactly 80 * 6 undirected motif edges are causal, in both directions, all inside houses."""
    data = load_ba_shapes(_cfg(), seed=3)
    causal = data.edge_index[:, data.causal_edge_mask]
    assert causal.size(1) == 80 * 6 * 2
    assert is_undirected(causal)
    assert bool((data.y[causal] > 0).all())  # both endpoints are motif nodes
    # Node 300 + 5k .. 300 + 5k + 4 form house k; causal edges never leave their house.
    assert torch.equal((causal[0] - 300) // 5, (causal[1] - 300) // 5)
    # Roof apex (label 3) has degree 2 within its house, joined to both upper corners (label 1).
    roof_neighbours = data.y[causal[1][data.y[causal[0]] == 3]]
    assert roof_neighbours.tolist() == [1] * 160


def test_noise_edges_are_one_percent() -> None:
    """The same seed without noise gives the same graph minus floor(1% of its edges), none causal."""
    clean = load_ba_shapes(_cfg(noise_edge_fraction=0.0), seed=5)
    noisy = load_ba_shapes(_cfg(), seed=5)
    base, full = _edge_set(clean.edge_index), _edge_set(noisy.edge_index)
    assert base < full
    extra = full - base
    assert len(extra) == 2 * int(len(base) // 2 * 0.01) > 0
    not_causal = _edge_set(noisy.edge_index[:, ~noisy.causal_edge_mask])
    assert extra <= not_causal
    assert int(noisy.causal_edge_mask.sum()) == int(clean.causal_edge_mask.sum()) == 960


def test_same_seed_same_graph_and_global_rng_untouched() -> None:
    """A seed fixes graph, labels and splits; a new seed changes them; global RNGs are left alone."""
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    a, b, c = load_ba_shapes(_cfg(), seed=7), load_ba_shapes(_cfg(), seed=7), load_ba_shapes(_cfg(), seed=8)
    assert torch.equal(torch.rand(1), expected_torch) and np.random.rand() == expected_np
    for key in ("edge_index", "y", "causal_edge_mask", "train_mask", "ind_train_mask"):
        assert torch.equal(a[key], b[key])
    assert _edge_set(a.edge_index) != _edge_set(c.edge_index)


@pytest.mark.parametrize("field,value", [
    ("base_nodes", 0), ("base_nodes", 2.5), ("base_m", 0), ("base_m", 300), ("num_motifs", 0),
    ("num_motifs", 301), ("noise_edge_fraction", -0.1), ("noise_edge_fraction", 2),
    ("feature_dim", 0), ("feature_dim", "ten"),
])
def test_bad_config_fields(field: str, value: object) -> None:
    """Invalid sizes raise a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"data.{field}"):
        load_ba_shapes(_cfg(**{field: value}), seed=0)


def test_bad_split_is_config_error() -> None:
    """Split fractions outside (0, 1) raise a ConfigError naming data.split."""
    with pytest.raises(ConfigError, match="data.split"):
        load_ba_shapes(_cfg(split={"train": 0.9, "val": 0.2}), seed=0)
