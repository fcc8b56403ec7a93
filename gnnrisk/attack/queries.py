"""Batched black-box and white-box queries: many perturbed copies of a graph in one forward pass.

A chunk of B queries is answered by one forward pass: for GCN and GraphSAGE on the cached sparse
operator with B stacked inputs, for other models over the disjoint union of B copies of the graph,
each copy carrying its own perturbation. There is no Python loop over pairs, and none over queried
nodes except for models that refuse the union (see `forward_copies`).
"""

from __future__ import annotations

import logging
import time

import torch
from torch import Tensor, nn

from gnnrisk.errors import GnnriskError
from gnnrisk.models.full_batch import FullBatchForward, full_graph_forward

log = logging.getLogger(__name__)


def forward_copies(model: nn.Module, xb: Tensor, edge_index: Tensor, copies: int) -> Tensor:
    """Logits [copies, n, C] for `copies` stacked feature matrices xb [copies*n, F] on one graph.

    Models that answer only for the exact node set they were released with (GAP's cached
    aggregations) refuse the disjoint union; their queries are then answered one copy at a time.
    """
    n = xb.size(0) // copies
    try:
        return model(xb, replicate_edges(edge_index, n, copies)).view(copies, n, -1)
    except GnnriskError:
        return torch.stack([model(part, edge_index) for part in xb.view(copies, n, -1)])


# Largest disjoint union (in directed edges) one batched query may build; bounds memory on dense graphs.
MAX_BATCH_EDGES = 4_000_000


def copies_per_pass(edge_index: Tensor, chunk: int) -> int:
    """Queries per forward pass: `chunk`, fewer when the graph is so dense that the union would be too big."""
    return max(1, min(chunk, MAX_BATCH_EDGES // max(edge_index.size(1), 1)))


def replicate_edges(edge_index: Tensor, num_nodes: int, copies: int) -> Tensor:
    """Edges of `copies` disjoint copies of a graph (copy b holds nodes b*n .. b*n+n-1)."""
    offsets = (torch.arange(copies, device=edge_index.device) * num_nodes).view(copies, 1, 1)
    return (edge_index.unsqueeze(0) + offsets).permute(1, 0, 2).reshape(2, -1)


# Largest stacked activation [B, N, width] one batched query on the cached operator may hold (floats).
MAX_STACKED_VALUES = 2**24


def _stacked_chunk(forward: FullBatchForward, n: int, chunk: int) -> int:
    """Queries per stacked pass: `chunk`, fewer when B x N x the widest layer would exceed the memory bound."""
    widths = [forward.x.size(1)] + [p.size(0) for p in forward.model.parameters() if p.dim() == 2]
    return max(1, min(chunk, MAX_STACKED_VALUES // max(n * max(widths), 1)))


@torch.no_grad()
def feature_influence(model: nn.Module, x: Tensor, edge_index: Tensor, sources: Tensor, targets: Tensor,
                      delta: float = 0.01, chunk: int = 32) -> Tensor:
    """LinkTeller influence [len(sources), len(targets)]: ||p_u(x with x_v * (1+delta)) - p_u(x)|| / delta.

    Row i scales the features of node `sources[i]` and reads the change in the released
    posteriors of every node in `targets` (Wu et al., S&P 2022, Algorithm 1). GCN and GraphSAGE
    answer a chunk of queries from the cached sparse operator (`FullBatchForward.with_scaled_rows`);
    other models from one pass over the disjoint union of perturbed copies of the graph.
    """
    model.eval()
    n = x.size(0)
    forward = full_graph_forward(model, x, edge_index)
    base = forward().softmax(-1)[targets]
    if isinstance(forward, FullBatchForward):
        chunk = _stacked_chunk(forward, n, chunk)
    else:
        chunk = copies_per_pass(edge_index, chunk)
    rows = []
    began, reported = time.perf_counter(), time.perf_counter()
    for start in range(0, sources.numel(), chunk):
        if time.perf_counter() - reported > 60:  # dense released graphs make queries slow: show progress
            reported = time.perf_counter()
            log.info("influence queries: %d/%d answered in %.0f s", start, sources.numel(), reported - began)
        src = sources[start:start + chunk].to(x.device)
        b = src.numel()
        if isinstance(forward, FullBatchForward):
            logits = forward.with_scaled_rows(src, 1 + delta)
        else:
            xb = x.repeat(b, 1)
            xb[torch.arange(b, device=x.device) * n + src] *= 1 + delta
            logits = forward_copies(model, xb, edge_index, b)
        prob = logits.softmax(-1)[:, targets]
        rows.append((prob - base).norm(dim=-1) / delta)
    return torch.cat(rows).cpu()


def own_feature_gradients(model: nn.Module, x: Tensor, edge_index: Tensor, nodes: Tensor,
                          chunk: int = 32) -> Tensor:
    """Gradient explanation [len(nodes), F]: d log p(predicted class of v) / d x_v for each node v.

    Copy b of the graph back-propagates only its own node's output, so one backward pass gives
    B exact per-node gradients (a saliency map over the node's own features).
    """
    model.eval()
    n = x.size(0)
    with torch.no_grad():
        pred = model(x, edge_index).argmax(-1)
    chunk = copies_per_pass(edge_index, chunk)
    out = []
    for start in range(0, nodes.numel(), chunk):
        idx = nodes[start:start + chunk].to(x.device)
        b = idx.numel()
        xb = x.repeat(b, 1).requires_grad_(True)
        logp = forward_copies(model, xb, edge_index, b).log_softmax(-1)
        picked = logp[torch.arange(b, device=x.device), idx, pred[idx]].sum()
        grad, = torch.autograd.grad(picked, xb)
        out.append(grad.view(b, n, -1)[torch.arange(b, device=x.device), idx].detach())
    return torch.cat(out).cpu()
