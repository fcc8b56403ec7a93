"""Full-batch GCN and GraphSAGE forwards over a cached sparse operator: PyG's function, computed faster.

PyG's message passing gathers and scatters every edge in every layer of every epoch. For a
full-batch pass over one fixed graph the same function can be computed as sparse-dense matrix
products with a CSR operator built once (its normalisation by PyG's own `gcn_norm`), and the
first layer's propagation `A X` computed once, since neither the graph nor the input features
change during training (PyG's `BasicGNN` applies no dropout to the input). Layers after the first
project before they propagate when that is narrower. The parameters stay those of the PyG model,
so explainers and attacks use the same model object on any graph through its own `forward`.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Callable

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import GCN, GraphSAGE

SUM_AGGRS = ("sum", "add")
LINEAR_AGGRS = (*SUM_AGGRS, "mean")


class SparseOperator(torch.autograd.Function):
    """`A @ h` whose backward multiplies by a transpose prepared once (torch would transpose per step)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, h: Tensor) -> Tensor:  # type: ignore[override]
        """The propagation `A h`."""
        ctx.a_t = a_t
        return a @ h

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        """Gradient with respect to h: `A^T grad`."""
        return None, None, ctx.a_t @ grad


def csr(rows: Tensor, cols: Tensor, values: Tensor, num_nodes: int) -> Tensor:
    """An N x N CSR matrix with `values` at (rows, cols); a repeated pair adds up, as in message passing.

    Built by one sort of the linear cell index (skipped when already sorted), with int32 indices
    where they fit: half the index traffic of every product, which is what a product on a dense
    released graph waits for.
    """
    key = rows * num_nodes + cols
    if key.numel() > 1 and not bool((key[1:] >= key[:-1]).all()):
        order = torch.argsort(key)
        rows, cols, values = rows[order], cols[order], values[order]
    small = max(num_nodes, rows.numel()) < 2**31
    index_dtype = torch.int32 if small else torch.int64
    crow = torch.zeros(num_nodes + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=num_nodes).cumsum(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), values, (num_nodes, num_nodes),
                                       check_invariants=False)  # built from valid indices: no check needed


def propagation_matrix(conv: nn.Module, edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> Tensor:
    """The matrix M with `propagate(x)[i] = sum_j M[i, j] x[j]` for this conv (row = target, column = source)."""
    src, dst = edge_index
    if isinstance(conv, GCNConv):
        normed, weight = gcn_norm(edge_index, None, num_nodes, improved=conv.improved,
                                  add_self_loops=conv.add_self_loops, flow=conv.flow, dtype=dtype)
        return csr(normed[1], normed[0], weight, num_nodes)
    weight = torch.ones(src.numel(), dtype=dtype, device=edge_index.device)
    if str(conv.aggr) == "mean":
        in_degree = torch.zeros(num_nodes, dtype=dtype, device=edge_index.device).index_add_(0, dst, weight)
        weight = weight / in_degree[dst]
    return csr(dst, src, weight, num_nodes)


def operator_kind(conv: nn.Module) -> tuple:
    """What a conv's propagation matrix depends on besides the graph."""
    if isinstance(conv, GCNConv):
        return ("gcn", conv.improved, conv.add_self_loops)
    return ("sage", str(conv.aggr))


class OperatorCache:
    """The operators of the few graphs used last (a run trains and then predicts on the same graph)."""

    def __init__(self, size: int = 2):
        self.size = size
        self.entries: list[tuple[weakref.ref, int, tuple, tuple[Tensor, Tensor]]] = []

    def get(self, conv: nn.Module, edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """(A, A^T) of this conv on this graph, built once while `edge_index` is neither freed nor modified."""
        kind = (*operator_kind(conv), num_nodes, dtype)
        for ref, version, key, ops in self.entries:
            if ref() is edge_index and version == edge_index._version and key == kind:
                return ops
        a = propagation_matrix(conv, edge_index, num_nodes, dtype)
        # GCN's and a sum's operator of an undirected graph are symmetric; a mean's (D^-1 A) is not
        symmetric = kind[0] == "gcn" or kind[1] in SUM_AGGRS
        a_t = a if symmetric and _is_symmetric(edge_index, num_nodes) else a.t().to_sparse_csr()
        self.entries = [(weakref.ref(edge_index), edge_index._version, kind, (a, a_t))] + self.entries[: self.size - 1]
        return a, a_t


OPERATORS = OperatorCache()


def _plain_conv(conv: nn.Module) -> bool:
    """Whether a conv computes a linear propagation this module reproduces exactly."""
    if isinstance(conv, GCNConv):
        return conv.normalize and not conv.cached and conv.flow == "source_to_target"
    if isinstance(conv, SAGEConv):
        return (str(conv.aggr) in LINEAR_AGGRS and not conv.project and not conv.normalize
                and conv.flow == "source_to_target")
    return False


def supports(model: nn.Module) -> bool:
    """Whether `model` is a PyG GCN or GraphSAGE whose full-batch forward this module reproduces."""
    if not isinstance(model, (GCN, GraphSAGE)) or model.jk_mode is not None or hasattr(model, "lin"):
        return False
    if not all(isinstance(norm, nn.Identity) for norm in model.norms):
        return False
    if model.act is not None and not isinstance(model.act, nn.ReLU):
        return False
    return all(_plain_conv(conv) for conv in model.convs)


class FullBatchForward:
    """`model(x, edge_index)` on one fixed graph, as sparse products with operators and `A X` built once."""

    def __init__(self, model: nn.Module, x: Tensor, edge_index: Tensor):
        self.model = model
        n = x.size(0)
        first = model.convs[0]
        self.operator, self.operator_t = OPERATORS.get(first, edge_index, n, x.dtype)
        self.x = x
        self.ax = self.operator @ x  # the first layer's propagation: constant during training

    def _propagate(self, h: Tensor) -> Tensor:
        """`A h` for h [N, F], or for each of B stacked inputs h [B, N, F] in one product."""
        if h.dim() == 2:
            return SparseOperator.apply(self.operator, self.operator_t, h)
        b, n, f = h.shape
        flat = h.permute(1, 0, 2).reshape(n, b * f)
        return SparseOperator.apply(self.operator, self.operator_t, flat).view(n, b, f).permute(1, 0, 2)

    def _conv(self, i: int, conv: nn.Module, h: Tensor, ax: Tensor, x: Tensor) -> Tensor:
        """Layer i; layer 0 reads `ax` (= A x), later layers project first when that is narrower."""
        if isinstance(conv, GCNConv):
            weight = conv.lin.weight
            if i == 0:
                out = ax @ weight.T
            else:
                out = self._propagate(h @ weight.T) if weight.size(0) <= weight.size(1) \
                    else self._propagate(h) @ weight.T
            return out + conv.bias if conv.bias is not None else out
        lin_l = conv.lin_l
        if i == 0:
            out = lin_l(ax)
        elif lin_l.weight.size(0) <= lin_l.weight.size(1):
            out = self._propagate(h @ lin_l.weight.T)
            out = out + lin_l.bias if lin_l.bias is not None else out
        else:
            out = lin_l(self._propagate(h))
        return out + conv.lin_r(h if i else x) if conv.root_weight else out

    def _layers(self, ax: Tensor, x: Tensor) -> Tensor:
        """The model's layers, activation and dropout, from the first layer's propagation `ax` and input `x`."""
        model, h = self.model, x
        last = model.num_layers - 1
        for i, conv in enumerate(model.convs):
            h = self._conv(i, conv, h, ax, x)
            if i < last:
                h = model.act(h) if model.act is not None else h
                h = model.dropout(h)
        return h

    def __call__(self) -> Tensor:
        """Logits for every node, equal to `model(x, edge_index)` in the model's current mode."""
        return self._layers(self.ax, self.x)

    def with_scaled_rows(self, nodes: Tensor, factor: float) -> Tensor:
        """Logits [B, N, C]: query b is the model on x with row `nodes[b]` multiplied by `factor`.

        Query b changes x by one row, so its first propagation is `A x` plus column `nodes[b]` of A
        times that row's change: no product over the graph per query, and the later layers of all B
        queries share each sparse product.
        """
        n, b = self.x.size(0), nodes.numel()
        change = self.x[nodes] * (factor - 1.0)                       # [B, F]
        picks = torch.zeros(n, b, dtype=self.x.dtype, device=self.x.device)
        picks[nodes, torch.arange(b, device=self.x.device)] = 1.0
        columns = (self.operator @ picks).T                            # [B, N]: column nodes[b] of A
        ax = self.ax.unsqueeze(0) + columns.unsqueeze(2) * change.unsqueeze(1)
        x = self.x.unsqueeze(0).repeat(b, 1, 1)
        x[torch.arange(b, device=x.device), nodes] *= factor
        return self._layers(ax, x)


def _is_symmetric(edge_index: Tensor, num_nodes: int) -> bool:
    """Whether every edge (u, v) has its reverse (v, u)."""
    forward = edge_index[0] * num_nodes + edge_index[1]
    backward = edge_index[1] * num_nodes + edge_index[0]
    return forward.numel() == backward.numel() and bool(
        torch.equal(torch.sort(forward).values, torch.sort(backward).values))


def full_graph_forward(model: nn.Module, x: Tensor, edge_index: Tensor) -> Callable[[], Tensor]:
    """A zero-argument full-graph forward equal to `model(x, edge_index)`: cached where supported, else plain."""
    if supports(model) and edge_index.numel() > 0:
        return FullBatchForward(model, x, edge_index)
    return lambda: model(x, edge_index)
