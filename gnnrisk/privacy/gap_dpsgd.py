"""DP-SGD for the node-level mechanisms' MLP parts: Poisson-sampled batches, Opacus ghost clipping and noise."""

from __future__ import annotations

import logging
import math
import warnings

import torch
import torch.nn.functional as F
from opacus.grad_sample import GradSampleModuleFastGradientClipping, register_grad_sampler, register_norm_sampler
from opacus.grad_sample.linear import compute_linear_grad_sample, compute_linear_norm_sample
from opacus.optimizers import DPOptimizerFastGradientClipping
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from torch import Tensor, nn
from torch_geometric.nn.dense.linear import Linear as PygLinear

from gnnrisk.privacy.diagnostics import DpsgdTrace

# PyG's Linear (inside the MLP of `model=mlp`) computes F.linear(x, weight, bias) as torch.nn.Linear does, so
# Opacus's rules for nn.Linear hold for it; without them Opacus falls back to functorch's per-sample
# gradients, materialised and ~10x slower (experiments/perf/bench_dpsgd_clipping.py --model pyg).
register_grad_sampler(PygLinear)(compute_linear_grad_sample)
register_norm_sampler(PygLinear)(compute_linear_norm_sample)
# Opacus logs one INFO line per layer and training ("under Ghost Clipping"): noise in every run's app.log
logging.getLogger("opacus.grad_sample.grad_sample_module_fast_gradient_clipping").setLevel(logging.WARNING)


def poisson_schedule(num_examples: int, batch_size: int) -> tuple[float, int]:
    """Sampling rate q = batch_size / num_examples and steps per epoch round(1/q) (Opacus's convention)."""
    q = min(1.0, batch_size / num_examples)
    return q, max(1, round(1.0 / q))


def dpsgd_fit(module: nn.Module, inputs: Tensor, labels: Tensor, *, epochs: int, batch_size: int,
              lr: float, weight_decay: float, noise_multiplier: float, max_grad_norm: float,
              val: tuple[Tensor, Tensor] | None = None, seed: int = 0,
              trace: DpsgdTrace | None = None) -> tuple[int, list[dict[str, float]]]:
    """Train `module` (inputs -> logits) with DP-SGD for a fixed number of epochs; return (steps, history).

    Every step draws each example independently with probability q (Poisson sampling, the setting of
    Opacus's RDP analysis), clips each per-example gradient to `max_grad_norm` and adds
    N(0, (noise_multiplier * max_grad_norm)^2) to the sum. No checkpoint is picked on validation data
    (it is private too): the last weights are kept; `val` only feeds the logged curve. `trace`, if given,
    records each step's clipped share and signal against noise (`gnnrisk.privacy.diagnostics`).
    """
    n = inputs.size(0)
    q, steps_per_epoch = poisson_schedule(n, batch_size)
    # Ghost clipping (Li et al. 2022; Opacus's fast gradient clipping): each example's gradient norm comes
    # from its activations and backprops without materialising per-example gradients, and a second
    # backward pass on the loss reweighted by the clipping factors gives the sum of clipped gradients,
    # equal to per-sample clipping up to rounding (tests/privacy/test_gap_dpsgd.py) and ~10x faster on
    # wide inputs (experiments/perf/bench_dpsgd_clipping.py).
    gsm = GradSampleModuleFastGradientClipping(module, loss_reduction="mean", max_grad_norm=max_grad_norm,
                                               use_ghost_clipping=True)
    optimizer = DPOptimizerFastGradientClipping(
        torch.optim.Adam(gsm.parameters(), lr=lr, weight_decay=weight_decay), noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm, expected_batch_size=max(1, round(q * n)), loss_reduction="mean")
    # "mean" throughout: the hooks rescale backprops to each example's own gradient, the second backward sums
    # the clipped gradients, and the optimiser divides the noisy sum by the expected batch size, independent
    # of the drawn batch (Poisson sampling's unbiased estimate).
    criterion = DPLossFastGradientClipping(gsm, optimizer, nn.CrossEntropyLoss(), loss_reduction="mean")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    history: list[dict[str, float]] = []
    # Opacus's hooks fire on module outputs because raw features never require grad: expected here.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    if trace is not None:
        trace.window = steps_per_epoch  # the drowned verdict reads the input layer's gradient accumulated per epoch
    for epoch in range(1, epochs + 1):
        gsm.train()
        total, count = 0.0, 0
        for _ in range(steps_per_epoch):
            chosen = (torch.rand(n, generator=generator) < q).nonzero().flatten().to(inputs.device)
            optimizer.zero_grad(set_to_none=True)
            if chosen.numel():
                loss = criterion(gsm(inputs[chosen]), labels[chosen])
                loss.backward()
                total += float(loss.loss_per_sample.detach().sum())
            else:  # an empty Poisson batch still releases noise (the accountant counts the step)
                for p in optimizer.params:
                    p.grad = torch.zeros_like(p)
            optimizer.step()
            if trace is not None:
                _record(trace, optimizer, gsm if chosen.numel() else None)
            count += chosen.numel()
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if val is not None:
            row.update(_val_curve(module, *val))
        history.append(row)
    gsm._close()  # remove Opacus hooks so the plain module can be used (and deep-copied) afterwards
    module.eval()
    return epochs * steps_per_epoch, history


@torch.no_grad()
def _record(trace: DpsgdTrace, optimizer: DPOptimizerFastGradientClipping,
            gsm: GradSampleModuleFastGradientClipping | None) -> None:
    """One step's per-example norms, clipped sum and released noisy sum, read from Opacus's fields."""
    params = [p for p in optimizer.params if p.summed_grad is not None]
    scale = optimizer.expected_batch_size * optimizer.accumulated_iterations  # undo scale_grad's division
    trace.record(gsm.per_sample_gradient_norms if gsm is not None else None,
                 [p.summed_grad for p in params], [p.grad * scale for p in params])


@torch.no_grad()
def _val_curve(module: nn.Module, inputs: Tensor, labels: Tensor) -> dict[str, float]:
    """Validation loss and accuracy for the logged curve (not used to select weights)."""
    module.eval()
    logits = module(inputs)
    return {"val_loss": float(F.cross_entropy(logits, labels)),
            "val_acc": float((logits.argmax(-1) == labels).float().mean()) if labels.numel() else math.nan}
