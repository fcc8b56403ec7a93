"""The explainers over periods: saliency, integrated gradients and GNNExplainer on the message masks of copies."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.explain.algorithm import GNNExplainer

from gnnrisk.explain.temporal_masks import Explained, chunks, log_odds, split_grad
from gnnrisk.explain.temporal_truth import Reach


def saliency(expl: Explained, reaches: list[Reach], cls: list[int], batch: int) -> list[Tensor]:
    """Per node, per directed candidate edge and period: |d f / d w| at w = 1 (f = log-odds of its class)."""
    out: list[list[Tensor]] = []
    for part in chunks(list(range(len(reaches))), batch):
        rs = [reaches[i] for i in part]
        weights = [torch.ones(sum(r.edges[s].numel() for r in rs), device=expl.xs.device, requires_grad=True)
                   for s in range(expl.origin + 1)]
        f = log_odds(expl.logits([r.node for r in rs], [r.edges for r in rs], weights),
                     torch.tensor([cls[i] for i in part], device=expl.xs.device))
        grads = torch.autograd.grad(f.sum(), weights, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
        out.extend([[g.abs() for g in node] for node in split_grad(grads, rs)])
    return out


def gauss_legendre(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in (0, 1) and weights (summing to 1) of the n-point Gauss-Legendre rule (Captum's default)."""
    x, w = np.polynomial.legendre.leggauss(n_steps)
    return (x + 1) / 2, w / 2


def integrated_gradients(expl: Explained, reaches: list[Reach], cls: list[int], n_steps: int, batch: int
                         ) -> list[list[Tensor]]:
    """Per node, signed IG attributions per directed candidate edge and period, from all-zero to all-one weights.

    Every (node, Gauss-Legendre point) is one copy; copies are evaluated `batch` at a time.
    """
    alphas, step_w = gauss_legendre(n_steps)
    device = expl.xs.device
    total = [[torch.zeros(e.numel(), device=device) for e in r.edges] for r in reaches]
    jobs = [(i, k) for i in range(len(reaches)) for k in range(n_steps)]
    for part in chunks(jobs, batch):
        rs = [reaches[i] for i, _ in part]
        weights = [torch.cat([torch.full((r.edges[s].numel(),), float(alphas[k]), device=device)
                              for r, (_, k) in zip(rs, part)]).requires_grad_(True) for s in range(expl.origin + 1)]
        f = log_odds(expl.logits([r.node for r in rs], [r.edges for r in rs], weights),
                     torch.tensor([cls[i] for i, _ in part], device=device))
        scale = torch.tensor([step_w[k] for _, k in part], dtype=f.dtype, device=device)
        grads = torch.autograd.grad((f * scale).sum(), weights, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
        for (i, _), node in zip(part, split_grad(grads, rs)):
            for s, g in enumerate(node):  # periods
                total[i][s] += g
    return total


def model_value(expl: Explained, reach: Reach, cls: int, weight: float) -> float:
    """f (log-odds of `cls`) with every candidate edge of `reach` at `weight` (IG's end points)."""
    with torch.no_grad():
        w = [torch.full((e.numel(),), weight, device=expl.xs.device) for e in reach.edges]
        return float(log_odds(expl.logits([reach.node], [reach.edges], w), torch.tensor([cls], device=expl.xs.device)))


def gnnexplainer(expl: Explained, reaches: list[Reach], cls: list[int], epochs: int, lr: float, batch: int
                 ) -> list[list[Tensor]]:
    """Per node: sigmoid of its GNNExplainer mask per directed candidate edge and period (0 off the hard mask).

    PyG's objective and initialisation (std = gain(relu) * sqrt(2 / (2 N)), N = nodes of the graph the
    model reads), with its default coefficients; the regularisers act from the second step on, over
    the edges whose first-step gradient is non-zero, as in PyG's `GNNExplainer._train`.
    """
    coeffs = GNNExplainer.default_coeffs
    device = expl.xs.device
    std = torch.nn.init.calculate_gain("relu") * (2.0 / (2 * expl.n)) ** 0.5
    out: list[list[Tensor]] = []
    for part in chunks(list(range(len(reaches))), batch):
        rs = [reaches[i] for i in part]
        sizes = [sum(e.numel() for e in r.edges) for r in rs]
        params = torch.nn.Parameter(torch.randn(sum(sizes), device=device) * std)
        owner = torch.repeat_interleave(torch.arange(len(rs), device=device), torch.tensor(sizes, device=device))
        target = torch.tensor([cls[i] for i in part], device=device)
        optimizer = torch.optim.Adam([params], lr=lr)
        graphs = expl.copies([r.edges for r in rs])
        hard: Tensor | None = None
        for step in range(epochs):  # optimisation steps
            optimizer.zero_grad()
            mask = params.sigmoid()
            loss = F.cross_entropy(expl.run(graphs, [r.node for r in rs], by_period(mask, rs, sizes)), target,
                                   reduction="sum")
            if hard is not None:
                m = mask[hard]
                ent = -m * torch.log(m + coeffs["EPS"]) - (1 - m) * torch.log(1 - m + coeffs["EPS"])
                count = torch.bincount(owner[hard], minlength=len(rs)).clamp(min=1)
                loss = loss + coeffs["edge_size"] * m.sum() + coeffs["edge_ent"] * (
                    torch.zeros(len(rs), device=device).index_add(0, owner[hard], ent) / count).sum()
            loss.backward()
            optimizer.step()
            if step == 0:
                hard = params.grad != 0
        final = params.detach().sigmoid() * (hard if hard is not None else 1)
        for i, piece in enumerate(torch.split(final, sizes)):
            out.append(list(torch.split(piece, [e.numel() for e in rs[i].edges])))
    return out


def by_period(flat: Tensor, reaches: list[Reach], sizes: list[int]) -> list[Tensor]:
    """Reorder weights laid out per copy (copy i: its periods in order) into per-period concatenations."""
    per_copy_parts = [list(torch.split(piece, [e.numel() for e in r.edges]))
                      for piece, r in zip(torch.split(flat, sizes), reaches)]
    return [torch.cat([parts[s] for parts in per_copy_parts]) for s in range(len(reaches[0].edges))]
