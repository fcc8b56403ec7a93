"""Signal against noise: whether a private mechanism's noise drowned what it was trying to learn.

A private run at the majority share may be a weak mechanism or a mis-set one (features scaled so that
every per-example gradient is tiny, a clipping bound far above the gradients, too few steps). These
records say which, per part of the mechanism:

- DP-SGD (`DpsgdTrace`), per step: the share of per-example gradients that were clipped, and the norm
  of the summed clipped gradients against the norm of the added noise (sigma C sqrt(P), P parameters).
  The same ratio for the first parameter tensor alone (`*_input_grad_snr`): the weights of the layer that
  reads the examples' inputs, whose gradient carries what the model learns from the features (the biases
  and the last layer learn the class prior from any input). Two versions of each ratio: `*_grad_snr`,
  estimated from the noisy gradients that DP-SGD releases (E||s + n||^2 = ||s||^2 + sigma^2 C^2 P;
  post-processing, covered by epsilon), and `*_grad_snr_exact` with `*_clipped_share`, read from the
  per-example gradients (private data: diagnostics outside epsilon). The part is *drowned*
  (`*_drowned`) when the input layer's gradient accumulated over an epoch (`window` steps, set by the
  training loop) carries no signal power that a test at level 2.5% can tell apart from the noise
  accumulated with it, neither pooled over the epochs nor in the strongest epoch (`_windowed_snr`).
  Per epoch, not per step: the weights integrate the updates, so a signal below the noise at every step
  still moves them when it keeps its direction (it grows as m, the noise as sqrt(m), over m steps), while
  a converged model's per-step gradients are batch-sampling fluctuation that averages out; the strongest
  epoch counts because a model learns early and then converges, and pooling its late epochs dilutes that.
  The verdict is about the part's input layer, not the run: a drowned first layer stays near its random
  initialisation, a random projection of the inputs from which later layers can still learn (measured on
  CiteSeer: GAP-NDP's encoder and DPDGC-NDP's feature branch are drowned in runs at 0.69-0.75 and
  0.66-0.70, `experiments/dpdgc_protocol.md`), so read it with the parts after it. `*_input_epoch_snr` is the pooled accumulated ratio. Measured on
  CiteSeer (DP-MLP, epsilon 16): row-normalised features give a per-step input-layer ratio of 0.005
  (drowned, test accuracy at the majority share); raw binary features 0.04 (not drowned, 0.66).
- Aggregation perturbation (`aggregation_snr`), per hop or stage: the RMS row norm of the noise-free
  aggregate, estimated from the released noisy rows, against the noise norm sigma sqrt(H). The hop is
  drowned when that estimate is within two standard errors of zero (indistinguishable from noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import Tensor

SIGNAL_TEST_LEVEL = 0.025  # one-sided: pure noise is called "not drowned" at most this often (two standard errors)


@dataclass
class DpsgdTrace:
    """Per-step records of one DP-SGD training (one module or stage), summarised by `summary`."""

    noise_multiplier: float
    max_grad_norm: float
    num_params: int
    input_params: int = 0  # size of the first parameter tensor: the weights of the layer that reads the inputs
    clipped: list[float] = field(default_factory=list)
    signal: list[float] = field(default_factory=list)     # ||sum of clipped per-example gradients||
    noisy_power: list[float] = field(default_factory=list)  # ||that sum + noise||^2 (what is released)
    input_signal: list[float] = field(default_factory=list)  # the same two, first parameter tensor only
    input_noisy_power: list[float] = field(default_factory=list)
    window: int = 0  # steps per epoch (set by the training loop): the verdict's accumulation window; 0 = one step
    window_signal: list[float] = field(default_factory=list)  # per window: ||sum of the input layer's clipped sums||
    window_noisy_power: list[float] = field(default_factory=list)  # ||sum of its released noisy sums||^2
    window_steps: list[int] = field(default_factory=list)
    # the open window: the input layer's clipped and noisy sums accumulated so far, and its steps
    open_clean: Tensor | None = field(default=None, repr=False)
    open_noisy: Tensor | None = field(default=None, repr=False)
    open_steps: int = 0

    @property
    def noise_norm(self) -> float:
        """Expected norm of the noise added to the summed gradient: sigma C sqrt(P)."""
        return self.noise_multiplier * self.max_grad_norm * math.sqrt(self.num_params)

    def record(self, per_example_norms: Tensor | None, clipped_sum: Iterable[Tensor], noisy_sum: Iterable[Tensor]) -> None:
        """One step: the unclipped per-example norms [B] (None: an empty batch), the clipped and the noisy sum."""
        clipped_sum, noisy_sum = list(clipped_sum), list(noisy_sum)
        if per_example_norms is not None and per_example_norms.numel():
            self.clipped.append(float((per_example_norms > self.max_grad_norm).float().mean()))
        self.signal.append(math.sqrt(sum(float(t.pow(2).sum()) for t in clipped_sum)))
        self.noisy_power.append(sum(float(t.pow(2).sum()) for t in noisy_sum))
        self.input_params = clipped_sum[0].numel()
        self.input_signal.append(float(clipped_sum[0].norm()))
        self.input_noisy_power.append(float(noisy_sum[0].pow(2).sum()))
        clean, noisy = clipped_sum[0].detach().double(), noisy_sum[0].detach().double()
        self.open_clean = clean if self.open_clean is None else self.open_clean + clean
        self.open_noisy = noisy if self.open_noisy is None else self.open_noisy + noisy
        self.open_steps += 1
        if self.open_steps >= max(self.window, 1):
            self._close_window()

    def _close_window(self) -> None:
        """Record the open window's accumulated input-layer sums, if it holds any step, and start a new one."""
        if self.open_steps:
            self.window_signal.append(float(self.open_clean.norm()))
            self.window_noisy_power.append(float(self.open_noisy.pow(2).sum()))
            self.window_steps.append(self.open_steps)
        self.open_clean, self.open_noisy, self.open_steps = None, None, 0

    def summary(self, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(covered, outside): the released-gradient estimate for metrics.json; exact values for diagnostics/."""
        steps = len(self.signal)
        if not self.signal or self.noise_norm == 0:
            return {}, {}
        self._close_window()
        input_noise = self.noise_multiplier * self.max_grad_norm * math.sqrt(self.input_params)
        snr, _ = _estimated_snr(self.noisy_power, self.noise_norm, self.num_params)
        input_snr, _ = _estimated_snr(self.input_noisy_power, input_noise, self.input_params)
        epoch_snr, drowned = _windowed_snr(self.window_noisy_power, self.window_steps, input_noise, self.input_params)
        covered = {f"{prefix}_grad_snr": snr, f"{prefix}_input_grad_snr": input_snr,
                   f"{prefix}_input_epoch_snr": epoch_snr, f"{prefix}_steps": steps, f"{prefix}_drowned": drowned}
        exact_epoch = [sig / (math.sqrt(m) * input_noise) for sig, m in zip(self.window_signal, self.window_steps)]
        outside = {f"{prefix}_grad_snr_exact": _median(self.signal) / self.noise_norm,
                   f"{prefix}_input_grad_snr_exact": _median(self.input_signal) / input_noise,
                   f"{prefix}_input_epoch_snr_exact": _median(exact_epoch),
                   f"{prefix}_clipped_share": sum(self.clipped) / max(len(self.clipped), 1)}
        return covered, outside


def _median(values: list[float]) -> float:
    """The middle value (upper median)."""
    return sorted(values)[len(values) // 2]


def _estimated_snr(noisy_powers: list[float], noise_norm: float, dim: int) -> tuple[float, bool]:
    """(signal norm over noise norm per step, drowned?) from the released noisy sums of `dim` coordinates.

    The signal power is estimated as mean ||s + n||^2 - ||n||^2 over the T steps; ||n||^2 has standard
    deviation noise^2 sqrt(2 / dim) per step, so the estimate's standard error is noise^2 sqrt(2 / (dim T)),
    and a signal power below two standard errors is indistinguishable from noise: drowned.
    """
    steps = len(noisy_powers)  # the recorded steps: the standard error is that of their mean
    power = sum(noisy_powers) / steps - noise_norm ** 2
    drowned = power < 2 * noise_norm ** 2 * math.sqrt(2.0 / (dim * steps))
    return math.sqrt(max(0.0, power)) / noise_norm, bool(drowned)


def _windowed_snr(noisy_powers: list[float], steps: list[int], noise_norm: float, dim: int) -> tuple[float, bool]:
    """(accumulated signal norm over accumulated noise norm, drowned?) from windows of released noisy sums.

    A window of m steps sums m noisy gradients of `dim` coordinates, each coordinate's noise N(0, noise^2 / dim):
    under no signal its power over m noise^2 / dim is chi-square with `dim` degrees of freedom, and the sum of
    those over the windows chi-square with dim x windows. Drowned when neither test finds a signal: the
    windows pooled (a signal that lasts) nor the strongest window, Bonferroni-corrected over the windows (a
    signal early in training, before the model converged and its gradients averaged out); each at level
    1.25%, so that pure noise is called not drowned at most 2.5% of the time. The ratio is
    sqrt(signal power / sum m) / noise with the signal power sum(||sum(s + n)||^2 - m noise^2): for windows of
    equal length m, ||sum s|| against the sqrt(m) noise it came with.
    """
    from scipy.stats import chi2

    per_coordinate = noise_norm ** 2 / dim
    q = [p / (m * per_coordinate) for p, m in zip(noisy_powers, steps)]
    level = SIGNAL_TEST_LEVEL / 2
    drowned = sum(q) < chi2.isf(level, dim * len(q)) and max(q) < chi2.isf(level / len(q), dim)
    signal = sum(p - m * noise_norm ** 2 for p, m in zip(noisy_powers, steps))
    return math.sqrt(max(0.0, signal / sum(steps))) / noise_norm, bool(drowned)


def param_count(module: torch.nn.Module) -> int:
    """Number of trainable parameters: the dimension the DP-SGD noise is spread over."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def aggregation_snr(aggregations: Tensor, noise_std: float, prefix: str = "aggregation") -> dict[str, float]:
    """Per hop k: the noise-free RMS row norm estimated from the released noisy rows, and its ratio to the noise.

    `aggregations` is [N, K, H]. E||s + n||^2 = ||s||^2 + noise_std^2 H for n ~ N(0, noise_std^2 I_H), so
    sqrt(max(0, mean ||x_k||^2 - noise_std^2 H)) estimates the signal; the estimate's standard error is about
    noise_std^2 sqrt(2 H / N), and a hop whose signal power is below two of them is drowned (`{prefix}{k}_drowned`).
    Post-processing of the released aggregations: covered by epsilon.
    """
    n, _, h = aggregations.shape
    noise_power = noise_std ** 2 * h
    power = aggregations.double().pow(2).sum(-1).mean(0) - noise_power
    out: dict[str, float] = {}
    for k, p in enumerate(power.tolist(), start=1):
        signal = math.sqrt(max(0.0, p))
        out[f"{prefix}{k}_signal_rms"] = signal
        if noise_std > 0:
            out[f"{prefix}{k}_snr"] = signal / math.sqrt(noise_power)
            out[f"{prefix}{k}_drowned"] = bool(p < 2 * noise_std ** 2 * math.sqrt(2 * h / n))
    return out


def drowned_parts(metrics: dict[str, Any]) -> list[str]:
    """The parts of a run whose noise dwarfs their signal, as readable phrases (for the console warning)."""
    parts = []
    for key, value in metrics.items():
        if not (key.endswith("_drowned") and value is True):
            continue
        part = key[: -len("_drowned")]
        if part + "_input_grad_snr" in metrics:
            epoch = metrics.get(part + "_input_epoch_snr", math.nan)
            parts.append(f"{part} DP-SGD (input-layer signal/noise {metrics[part + '_input_grad_snr']:.3g} per step, "
                         f"{epoch:.3g} accumulated over an epoch, {metrics.get(part + '_steps')} steps)")
        else:
            parts.append(f"{part} (signal/noise {metrics.get(part + '_snr', math.nan):.3g})")
    return parts
