"""DP-SGD for GAP-NDP's encoder and classifier: Poisson-sampled batches, Opacus per-sample clipping and noise."""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import Tensor, nn

from gnnrisk.privacy.diagnostics import DpsgdTrace, per_example_norms


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
    gsm = GradSampleModule(module, loss_reduction="sum")  # per-sample gradients of single examples
    optimizer = DPOptimizer(torch.optim.Adam(gsm.parameters(), lr=lr, weight_decay=weight_decay),
                            noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                            expected_batch_size=max(1, round(q * n)), loss_reduction="mean")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    if trace is not None:  # per-example norms on at most ~200 steps: the clipped share, cheap on long trainings
        trace.every = max(1, math.ceil(epochs * steps_per_epoch / 200))
    history: list[dict[str, float]] = []
    # Opacus's hooks fire on module outputs because raw features never require grad: expected here.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    for epoch in range(1, epochs + 1):
        gsm.train()
        total, count = 0.0, 0
        for _ in range(steps_per_epoch):
            chosen = (torch.rand(n, generator=generator) < q).nonzero().flatten().to(inputs.device)
            optimizer.zero_grad(set_to_none=True)
            # summed loss -> exact per-example gradients; DPOptimizer ("mean") divides the noisy sum
            # of clipped gradients by the expected batch size, independent of the drawn batch.
            loss = F.cross_entropy(gsm(inputs[chosen]), labels[chosen], reduction="sum")
            loss.backward()
            optimizer.step()
            if trace is not None:
                _record(trace, optimizer)
            total += float(loss.detach())
            count += chosen.numel()
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if val is not None:
            row.update(_val_curve(module, *val))
        history.append(row)
    gsm._close()  # remove Opacus hooks so the plain module can be used (and deep-copied) afterwards
    module.eval()
    return epochs * steps_per_epoch, history


@torch.no_grad()
def _record(trace: DpsgdTrace, optimizer: DPOptimizer) -> None:
    """One step's per-example norms, clipped sum and released noisy sum, read from Opacus's parameter fields."""
    params = [p for p in optimizer.params if p.summed_grad is not None]
    samples = [p.grad_sample for p in params if p.grad_sample is not None] if trace.due() else []
    scale = optimizer.expected_batch_size * optimizer.accumulated_iterations  # undo scale_grad's division
    trace.record(per_example_norms(samples) if samples and samples[0].size(0) else None,
                 [p.summed_grad for p in params], [p.grad * scale for p in params])


@torch.no_grad()
def _val_curve(module: nn.Module, inputs: Tensor, labels: Tensor) -> dict[str, float]:
    """Validation loss and accuracy for the logged curve (not used to select weights)."""
    module.eval()
    logits = module(inputs)
    return {"val_loss": float(F.cross_entropy(logits, labels)),
            "val_acc": float((logits.argmax(-1) == labels).float().mean()) if labels.numel() else math.nan}
