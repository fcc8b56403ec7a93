"""Signal-against-noise diagnostics: estimates from released noisy values, and the drowned verdicts."""

from __future__ import annotations

import math

import pytest
import torch

from gnnrisk.privacy.diagnostics import DpsgdTrace, aggregation_snr, drowned_parts
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit


def test_signal_estimate_from_the_noisy_cache_recovers_the_noise_free_norm():
    g = torch.Generator().manual_seed(0)
    signal = torch.randn(4000, 2, 32, generator=g) * torch.tensor([0.5, 2.0]).view(1, 2, 1)
    rms = signal.pow(2).sum(-1).mean(0).sqrt()
    noisy = signal + 3.0 * torch.randn(signal.shape, generator=g)
    est = aggregation_snr(noisy, 3.0)
    assert est["aggregation1_signal_rms"] == pytest.approx(float(rms[0]), rel=0.15)
    assert est["aggregation2_signal_rms"] == pytest.approx(float(rms[1]), rel=0.03)
    assert est["aggregation2_snr"] == pytest.approx(float(rms[1]) / (3.0 * math.sqrt(32)), rel=0.03)
    exact = aggregation_snr(signal, 0.0)
    assert exact["aggregation2_signal_rms"] == pytest.approx(float(rms[1]), rel=1e-5)
    assert "aggregation2_drowned" not in exact  # no noise, nothing to drown in


def test_aggregation_drowned_flags_pure_noise_and_clears_a_signal():
    # 2 standard errors: pure noise is called drowned in ~98% of draws; count it over 200 draws
    g = torch.Generator().manual_seed(1)
    calls = [aggregation_snr(torch.randn(500, 1, 16, generator=g), 1.0)["aggregation1_drowned"] for _ in range(200)]
    assert sum(calls) >= 185  # binomial(200, 0.977): mean 195.4, sd 2.1
    strong = torch.randn(500, 1, 16, generator=g) + 0.5  # signal norm 2 against noise norm 4
    assert aggregation_snr(strong, 1.0)["aggregation1_drowned"] is False


def test_dpsgd_trace_estimates_the_signal_from_the_noisy_sums():
    g = torch.Generator().manual_seed(2)
    dim, sigma, clip, steps = 4000, 1.0, 1.0, 400
    trace = DpsgdTrace(sigma, clip, dim)
    signal = torch.zeros(dim)
    signal[:10] = 4.0  # ||s|| = 12.65 against a noise norm of sqrt(4000) = 63.2: ratio 0.2
    for _ in range(steps):
        trace.record(torch.tensor([0.5, 2.0]), [signal], [signal + sigma * clip * torch.randn(dim, generator=g)])
    covered, outside = trace.summary("m")
    assert outside["m_grad_snr_exact"] == pytest.approx(0.2, rel=1e-3)
    assert covered["m_grad_snr"] == pytest.approx(0.2, rel=0.15)
    assert outside["m_clipped_share"] == 0.5
    assert covered["m_drowned"] is False and covered["m_steps"] == steps


def _toy(scale: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two linearly separable classes whose features are multiplied by `scale`."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (1000,), generator=g)
    x = torch.randn(1000, 200, generator=g) + 1.5 * (2 * y.unsqueeze(1) - 1) * (torch.arange(200) < 20)
    return scale * x, y


@pytest.mark.parametrize("scale, drowned", [(1.0, False), (1e-4, True)])
def test_dpsgd_fit_calls_an_input_layer_drowned_when_features_are_scaled_away(scale, drowned):
    # the CiteSeer failure in miniature: the same task, features scaled so the input layer's gradients vanish
    x, y = _toy(scale)
    model = torch.nn.Sequential(torch.nn.Linear(200, 16), torch.nn.SELU(), torch.nn.Linear(16, 2))
    trace = DpsgdTrace(1.0, 1.0, sum(p.numel() for p in model.parameters()))
    dpsgd_fit(model, x, y, epochs=5, batch_size=100, lr=0.01, weight_decay=0.0, noise_multiplier=1.0,
              max_grad_norm=1.0, seed=0, trace=trace)
    covered, outside = trace.summary("dpsgd")
    assert covered["dpsgd_drowned"] is drowned
    assert 0.0 <= outside["dpsgd_clipped_share"] <= 1.0
    accuracy = float((model(x).argmax(-1) == y).float().mean())
    assert (accuracy < 0.7) is drowned  # the verdict matches what the model learned
    assert bool(drowned_parts(covered)) is drowned


def test_drowned_parts_name_each_part():
    metrics = {"encoder_drowned": True, "encoder_input_grad_snr": 0.001, "encoder_steps": 100,
               "hop2_drowned": True, "hop2_snr": 0.07, "hop1_drowned": False, "classifier_drowned": False}
    parts = drowned_parts(metrics)
    assert len(parts) == 2 and parts[0].startswith("encoder DP-SGD") and parts[1].startswith("hop2")


def test_every_step_is_read_with_its_per_example_norms():
    # the estimates and the verdict use every step (their standard error shrinks with the steps); ghost
    # clipping gives each step's per-example norms for free, so the clipped share covers every step
    x, y = _toy(1.0)
    model = torch.nn.Sequential(torch.nn.Linear(200, 8), torch.nn.SELU(), torch.nn.Linear(8, 2))
    trace = DpsgdTrace(1.0, 1.0, sum(p.numel() for p in model.parameters()))
    steps, _ = dpsgd_fit(model, x, y, epochs=4, batch_size=25, lr=0.01, weight_decay=0.0, noise_multiplier=1.0,
                         max_grad_norm=1.0, seed=0, trace=trace)
    assert steps == 160 and len(trace.signal) == steps
    assert len(trace.clipped) == steps
    assert trace.summary("d")[0]["d_steps"] == steps


@pytest.mark.parametrize("coherent, drowned", [(True, False), (False, True)])
def test_verdict_reads_the_gradient_accumulated_over_an_epoch(coherent, drowned):
    """A signal below the noise at every step (per-step statistic 0.5 standard errors) that keeps its direction
    over 100-step epochs accumulates to 5 standard errors: not drowned, as the weights that integrate it are
    not; the same per-step power in a new direction every step does not accumulate: drowned. A one-step
    window (window=0) calls both drowned, the false alarm the epoch window removes."""
    g = torch.Generator().manual_seed(3)
    dim, steps, window = 4000, 1000, 100
    norm = 1.19  # per-step signal power 1.41: 0.5 standard errors of the per-step estimate over 1,000 steps
    direction = torch.randn(dim, generator=g)
    per_epoch, per_step = DpsgdTrace(1.0, 1.0, dim, window=window), DpsgdTrace(1.0, 1.0, dim)
    for _ in range(steps):
        d = direction if coherent else torch.randn(dim, generator=g)
        s = norm * d / d.norm()
        noisy = s + torch.randn(dim, generator=g)
        for trace in (per_epoch, per_step):
            trace.record(None, [s], [noisy])
    covered, outside = per_epoch.summary("m")
    assert covered["m_drowned"] is drowned
    assert per_step.summary("m")[0]["m_drowned"] is True
    expected = norm * (window ** 0.5 if coherent else 1.0) / dim ** 0.5  # ||sum s|| / (sqrt(m) noise)
    assert outside["m_input_epoch_snr_exact"] == pytest.approx(expected, rel=0.05)


def test_a_signal_early_in_training_is_not_drowned():
    """A strong coherent signal in the first of twenty epochs, nothing after (a model that learned, then
    converged): pooled over the epochs it is diluted below the test (8 / sqrt(20) = 1.8 standard errors), the
    strongest epoch finds it (8 standard errors against a Bonferroni bound near 3.3): not drowned."""
    g = torch.Generator().manual_seed(4)
    dim, window = 4000, 100
    direction = torch.randn(dim, generator=g)
    trace = DpsgdTrace(1.0, 1.0, dim, window=window)
    for step in range(20 * window):
        s = 2.675 * direction / direction.norm() if step < window else torch.zeros(dim)
        trace.record(None, [s], [s + torch.randn(dim, generator=g)])
    assert trace.summary("m")[0]["m_drowned"] is False


def test_pure_noise_is_called_drowned_almost_always():
    """No signal at all: drowned in at least 95% of 100 traces of 10 ten-step epochs (the test's level is 2.5%)."""
    g = torch.Generator().manual_seed(5)
    calls = []
    for _ in range(100):
        trace = DpsgdTrace(1.0, 1.0, 500, window=10)
        for _ in range(100):
            trace.record(None, [torch.zeros(500)], [torch.randn(500, generator=g)])
        calls.append(trace.summary("m")[0]["m_drowned"])
    assert sum(calls) >= 95
