"""The cached full-batch forward computes exactly PyG's function, gradients included, and falls back where it cannot."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from gnnrisk.models import build_model
from gnnrisk.models.full_batch import FullBatchForward, full_graph_forward, supports
from gnnrisk.train import loop
from gnnrisk.train.loop import fit, predict_proba


def random_graph(n: int, m: int, symmetric: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and a random edge_index (both directions when symmetric), with isolated nodes likely."""
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n, (m,), generator=g), torch.randint(0, n, (m,), generator=g)
    keep = src != dst
    ei = torch.stack([src[keep], dst[keep]])
    if symmetric:
        ei = torch.cat([ei, ei.flip(0)], 1)
    return torch.randn(n, 7, generator=g), ei


def model_of(name: str, layers: int, hidden: int = 16, **extra) -> torch.nn.Module:
    """A model built as the pipeline builds it."""
    cfg = OmegaConf.create({"name": name, "hidden_channels": hidden, "num_layers": layers, "dropout": 0.5,
                            "norm": None, **({} if name == "mlp" else {"jk": None}), **extra})
    return build_model(cfg, 7, 3)


CASES = [("gcn", {}), ("sage", {"aggr": "sum"}), ("sage", {"aggr": "mean"})]


@pytest.mark.parametrize("name,extra", CASES)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("hidden", [2, 16])
def test_forward_and_gradients_equal_pyg(name, extra, layers, symmetric, hidden):
    torch.manual_seed(1)
    x, ei = random_graph(60, 150, symmetric)
    model = model_of(name, layers, hidden, **extra)
    assert supports(model)
    fast = full_graph_forward(model, x, ei)
    assert isinstance(fast, FullBatchForward)
    model.train()
    torch.manual_seed(5)
    ref = model(x, ei)
    ref_grads = torch.autograd.grad(ref.square().sum(), list(model.parameters()))
    torch.manual_seed(5)  # the same dropout draws: the fast pass calls the model's dropout in the same order
    out = fast()
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    assert torch.allclose(out, ref, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    model.eval()
    assert torch.allclose(fast(), model(x, ei), atol=1e-5)


@pytest.mark.parametrize("name,extra", [("gat", {}), ("gin", {}), ("sage", {"aggr": "max"}), ("gcn", {"jk": "cat"}),
                                        ("gcn", {"norm": "batch_norm"}), ("mlp", {})])
def test_unsupported_models_use_their_own_forward(name, extra):
    x, ei = random_graph(40, 100, True)
    model = model_of(name, 2, **extra).eval()
    assert not supports(model)
    forward = full_graph_forward(model, x, ei)
    assert not isinstance(forward, FullBatchForward)
    assert torch.allclose(forward(), model(x, ei))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_training_gives_the_same_predictions_as_pyg(name, monkeypatch):
    x, ei = random_graph(300, 1200, True, seed=3)
    y = (x[:, 0] > 0.3).long()
    perm = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    masks = [torch.zeros(300, dtype=torch.bool) for _ in range(3)]
    for mask, part in zip(masks, (perm[:150], perm[150:225], perm[225:])):
        mask[part] = True
    from torch_geometric.data import Data
    data = Data(x=x, edge_index=ei, y=y, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])
    cfg = OmegaConf.create({"epochs": 60, "lr": 0.01, "weight_decay": 5e-4, "patience": 60, "monitor": "val_loss",
                            "batch_size": None, "num_neighbors": [10, 10]})

    def trained(plain: bool) -> torch.Tensor:
        if plain:
            monkeypatch.setattr(loop, "full_graph_forward", lambda m, x, ei: (lambda: m(x, ei)))
        torch.manual_seed(0)
        model = model_of(name, 2, 32)
        fit(model, data, cfg, seed=0)
        return predict_proba(model, data)

    fast = trained(plain=False)
    plain = trained(plain=True)
    assert (fast - plain).abs().max() < 1e-4


@pytest.mark.parametrize("name,extra", CASES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_scaled_row_queries_equal_one_forward_per_query(name, extra, symmetric):
    x, ei = random_graph(50, 140, symmetric, seed=2)
    model = model_of(name, 2, 8, **extra).eval()
    fast = full_graph_forward(model, x, ei)
    nodes = torch.tensor([3, 17, 17, 42])
    with torch.no_grad():
        stacked = fast.with_scaled_rows(nodes, 1.5)
        for b, v in enumerate(nodes.tolist()):
            xv = x.clone()
            xv[v] *= 1.5
            assert torch.allclose(stacked[b], model(xv, ei), atol=1e-5)


def test_influence_is_the_same_through_the_operator_and_the_union():
    from gnnrisk.attack.queries import feature_influence
    x, ei = random_graph(80, 300, True, seed=4)
    model = model_of("gcn", 2, 16).eval()
    sources, targets = torch.arange(0, 30), torch.arange(10, 60)
    fast = feature_influence(model, x, ei, sources, targets, delta=0.1, chunk=7)
    with torch.no_grad():
        base = model(x, ei).softmax(-1)[targets]
        rows = []
        for v in sources.tolist():
            xv = x.clone()
            xv[v] *= 1.1
            rows.append((model(xv, ei).softmax(-1)[targets] - base).norm(dim=-1) / 0.1)
    assert torch.allclose(fast, torch.stack(rows), atol=1e-4)
