"""Forecasting models: shapes, causality in time, what each one reads."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from gnnrisk.models import build_forecaster
from gnnrisk.models.recurrent import PeriodGraph

N, T, F = 60, 5, 7


def graphs(seed: int) -> list[PeriodGraph]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(T):
        u, v = torch.randint(0, N, (2, 150), generator=g)
        keep = u != v
        ei = torch.cat([torch.stack([u[keep], v[keep]]), torch.stack([v[keep], u[keep]])], 1)
        out.append(PeriodGraph(torch.unique(ei, dim=1), N))
    return out


def model(name: str):
    torch.manual_seed(0)
    extra = {} if name in ("gconv_gru", "gconv_lstm", "lstm") else {"norm": None, "act": "relu"}
    cfg = OmegaConf.create({"name": name, "hidden_channels": 8, "num_layers": 2, "dropout": 0.0, **extra})
    return build_forecaster(cfg, F, 4).eval()


NAMES = ["gconv_gru", "gconv_lstm", "lstm", "gcn", "sage", "mlp"]


@pytest.mark.parametrize("name", NAMES)
def test_output_is_causal_in_time(name):
    xs = torch.randn(T, N, F)
    m, gs = model(name), graphs(0)
    out = m(xs, gs)
    assert out.shape == (T, N, 4)
    later = xs.clone()
    later[3:] = torch.randn(T - 3, N, F)
    changed = m(later, gs[:3] + graphs(1)[3:])
    assert torch.allclose(out[:3], changed[:3], atol=1e-6)   # nothing after period t enters forecast t
    assert not torch.allclose(out[3:], changed[3:])


@pytest.mark.parametrize("name,reads_ties", [("gconv_gru", True), ("gconv_lstm", True), ("lstm", False),
                                             ("gcn", True), ("mlp", False)])
def test_which_models_read_ties(name, reads_ties):
    xs = torch.randn(T, N, F)
    m = model(name)
    same = torch.allclose(m(xs, graphs(0)), m(xs, graphs(5)), atol=1e-6)
    assert same != reads_ties


@pytest.mark.parametrize("name", ["gconv_gru", "gconv_lstm", "gcn"])
def test_unit_edge_weights_equal_the_plain_graph(name):
    """The weighted path (explainers' masks) computes the same function at weight 1, with a gradient."""
    xs, gs = torch.randn(T, N, F), graphs(2)
    m = model(name)
    weighted = [PeriodGraph(g.edge_index, N, torch.ones(g.edge_index.size(1), requires_grad=True)) for g in gs]
    out = m(xs, weighted)
    assert torch.allclose(m(xs, gs), out, atol=1e-5)
    out[-1, 0].sum().backward()
    assert weighted[-1].edge_weight.grad.abs().sum() > 0


def test_input_dropout_passes_edge_weights_through():
    """A snapshot GCN with input dropout takes per-period edge weights like one without."""
    torch.manual_seed(0)
    cfg = OmegaConf.create({"name": "gcn", "hidden_channels": 8, "num_layers": 2, "dropout": 0.0,
                            "input_dropout": 0.5, "norm": None, "act": "relu"})
    m = build_forecaster(cfg, F, 4).eval()
    xs, gs = torch.randn(T, N, F), graphs(3)
    weighted = [PeriodGraph(g.edge_index, N, torch.ones(g.edge_index.size(1))) for g in gs]
    assert torch.allclose(m(xs, gs), m(xs, weighted), atol=1e-5)
