"""The shared DP-SGD loop: ghost clipping releases exactly the per-sample-clipped sum plus N(0, (sigma C)^2) noise."""

from __future__ import annotations

import pytest
import torch
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from torch.func import functional_call, grad, vmap
from torch_geometric.nn import MLP

from gnnrisk.privacy.diagnostics import DpsgdTrace
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit, poisson_schedule


class _FirstStep(DpsgdTrace):
    """A trace that keeps the first step's per-example norms, clipped sum and noisy sum."""

    def record(self, norms, clipped_sum, noisy_sum):  # type: ignore[override]
        if not self.signal:
            self.first = (norms.clone(), [t.clone() for t in clipped_sum], [t.clone() for t in noisy_sum])
        super().record(norms, clipped_sum, noisy_sum)


def _model(kind: str = "torch") -> torch.nn.Module:
    """GAP's plain torch.nn.Linear stack, or PyG's MLP (model=mlp, used by dp_mlp) of the same shape."""
    torch.manual_seed(3)
    if kind == "pyg":
        return MLP([300, 32, 16, 4], act="selu", norm=None, dropout=0.0)
    return torch.nn.Sequential(torch.nn.Linear(300, 32), torch.nn.SELU(), torch.nn.Linear(32, 16),
                               torch.nn.SELU(), torch.nn.Linear(16, 4))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return 3.0 * (torch.rand(500, 300, generator=g) < 0.05).float(), torch.randint(0, 4, (500,), generator=g)


def _reference_clipped_sum(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, clip: float):
    """Per-example gradients by torch.func, each clipped to `clip` (Opacus's factor), then summed."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, xi, yi):
        return torch.nn.functional.cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    grads = [per_example[k].flatten(1) for k in params]
    norms = torch.cat(grads, 1).norm(dim=1)
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)
    return norms, [(factor[:, None] * g).sum(0).view_as(params[k]) for g, k in zip(grads, params)]


@pytest.mark.parametrize("kind", ["torch", "pyg"])
def test_ghost_clipping_equals_per_sample_clipping_on_the_first_step(kind):
    x, y = _data()
    clip, batch = 5.0, 50
    model = _model(kind)
    reference_model = _model(kind)
    q, _ = poisson_schedule(x.size(0), batch)
    chosen = (torch.rand(x.size(0), generator=torch.Generator().manual_seed(7)) < q).nonzero().flatten()
    norms, expected = _reference_clipped_sum(reference_model, x[chosen], y[chosen], clip)
    assert (norms > clip).float().mean() > 0.2 and (norms < clip).any()  # both sides of the bound occur

    trace = _FirstStep(0.2, clip, sum(p.numel() for p in model.parameters()))
    dpsgd_fit(model, x, y, epochs=1, batch_size=batch, lr=0.01, weight_decay=0.0, noise_multiplier=0.2,
              max_grad_norm=clip, seed=7, trace=trace)
    got_norms, clipped, noisy = trace.first
    assert torch.allclose(got_norms, norms, rtol=1e-4, atol=1e-6)
    for got, want in zip(clipped, expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    # the released sum minus the clipped sum is the noise: N(0, (sigma C)^2) per coordinate, sigma C = 1
    noise = torch.cat([(n - c).flatten() for n, c in zip(noisy, clipped)])
    dim = noise.numel()  # ~10,200 coordinates: the sample std's standard error is ~1/sqrt(2 dim) = 0.7%
    assert abs(float(noise.std()) - 1.0) < 4 / (2 * dim) ** 0.5
    assert abs(float(noise.mean())) < 4 / dim ** 0.5


def test_an_empty_poisson_batch_still_releases_noise():
    x, y = _data()
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    trace = DpsgdTrace(1.0, 1.0, sum(p.numel() for p in model.parameters()))
    # 2 examples at batch 1: q = 0.5, one step per epoch; 40 epochs hold empty draws (P = 0.25 each)
    steps, _ = dpsgd_fit(model, x[:2], y[:2], epochs=40, batch_size=1, lr=0.01, weight_decay=0.0,
                         noise_multiplier=1.0, max_grad_norm=1.0, seed=0, trace=trace)
    assert steps == 80 and len(trace.signal) == steps and len(trace.clipped) < steps
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_same_seed_same_weights():
    x, y = _data()
    weights = []
    for _ in range(2):
        model = _model()
        dpsgd_fit(model, x, y, epochs=2, batch_size=50, lr=0.01, weight_decay=0.0, noise_multiplier=1.0,
                  max_grad_norm=1.0, seed=5)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(*weights)


@pytest.mark.parametrize("kind", ["torch", "pyg"])
def test_every_linear_layer_has_a_ghost_norm_rule(kind):
    # a layer without one falls back to materialised per-example gradients: correct but ~10x slower
    gsm = GradSampleModuleFastGradientClipping(_model(kind), use_ghost_clipping=True)
    linears = [m for m in gsm.modules() if hasattr(m, "weight") and m.weight.dim() == 2]
    assert linears and all(type(m) in gsm.NORM_SAMPLERS for m in linears)
    gsm._close()
