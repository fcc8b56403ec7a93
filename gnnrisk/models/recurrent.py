"""Forecasting models over periods: every one is `forward(xs, graphs) -> logits [T, N, out]`.

`xs` [T, N, F] holds each period's node inputs (features and the recorded outcome); `graphs` holds
each period's graph as a `PeriodGraph`. Entry [t] of the output is the forecast made with what was
known up to period t.

- `GConvGRU`, `GConvLSTM`: graph convolution inside GRU / LSTM cells (Seo et al., ICONIP 2018; the
  family of PyTorch Geometric Temporal's GConvGRU / GConvLSTM, with Chebyshev order K=2: a node's own
  term and a symmetric-normalised neighbour term, each with its own weights; no peepholes). Built on
  PyG's `gcn_norm` and sparse products, since torch-geometric-temporal pins older torch/PyG releases.
- `NodeLSTM`: an LSTM over each node's own history that never sees a tie (the reference a temporal
  graph model must beat, as the MLP is for a snapshot).
- `SnapshotModel`: a static model (GCN, SAGE, GAT, GIN or MLP) applied to each period's snapshot
  alone: the reference without memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gnnrisk.models.full_batch import SparseOperator, csr, full_graph_forward

RECURRENT_GRAPH_MODELS = ("gconv_gru", "gconv_lstm")
TEMPORAL_MODELS = (*RECURRENT_GRAPH_MODELS, "lstm")


@dataclass
class PeriodGraph:
    """One period's ties: the directed edge_index and optional edge weights (an explainer's mask)."""

    edge_index: Tensor
    num_nodes: int
    edge_weight: Tensor | None = None
    _operator: Tensor | None = field(default=None, repr=False)

    def propagate(self, h: Tensor) -> Tensor:
        """`A_hat h` with A_hat = D^-1/2 A D^-1/2 (no self-loops); differentiable in the edge weights when given.

        Without weights the operator is a CSR matrix built once per graph (it is symmetric, so it is its
        own transpose in the backward pass); with weights a COO product keeps the weights' gradient.
        """
        if self.edge_weight is None:
            if self._operator is None:
                ei, w = gcn_norm(self.edge_index, None, self.num_nodes, add_self_loops=False, dtype=h.dtype)
                self._operator = csr(ei[1], ei[0], w, self.num_nodes)
            return SparseOperator.apply(self._operator, self._operator, h)
        ei, w = gcn_norm(self.edge_index, self.edge_weight, self.num_nodes, add_self_loops=False)
        return torch.sparse.mm(torch.sparse_coo_tensor(ei.flip(0), w, (self.num_nodes,) * 2, check_invariants=False), h)


class ChebK2(nn.Module):
    """x W_0 + A_hat x W_1: a node's own term and its neighbours' term (Chebyshev order 2)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.own = nn.Linear(in_channels, out_channels, bias=bias)
        self.nbr = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, graph: PeriodGraph) -> Tensor:
        """The graph convolution of `x` on `graph`."""
        return self.own(x) + graph.propagate(self.nbr(x))

    def reset_parameters(self) -> None:
        """Re-initialise the weights."""
        self.own.reset_parameters()
        self.nbr.reset_parameters()


class _Recurrent(nn.Module):
    """Shared parts: a stack of graph-recurrent cells, dropout and a linear head applied every period."""

    gates = 3

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.hidden = hidden_channels
        sizes = [in_channels] + [hidden_channels] * num_layers
        self.x_convs = nn.ModuleList(ChebK2(sizes[i], self.gates * hidden_channels) for i in range(num_layers))
        self.h_convs = nn.ModuleList(ChebK2(hidden_channels, self.gates * hidden_channels, bias=False)
                                     for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_channels, out_channels)

    def forward(self, xs: Tensor, graphs: list[PeriodGraph]) -> Tensor:
        """Logits [T, N, out]: the head on each period's top-layer state."""
        n = xs.size(1)
        state = [self.initial_state(n, xs) for _ in self.x_convs]
        outs = []
        for t in range(xs.size(0)):  # periods
            inp = xs[t]
            for layer, (xc, hc) in enumerate(zip(self.x_convs, self.h_convs)):
                state[layer] = self.cell(xc(inp, graphs[t]), state[layer], hc, graphs[t])
                inp = self.output(state[layer])
            outs.append(self.head(self.dropout(inp)))
        return torch.stack(outs)

    def initial_state(self, n: int, xs: Tensor):
        """Zero state for `n` nodes."""
        return xs.new_zeros(n, self.hidden)

    def output(self, state) -> Tensor:
        """The hidden vector a layer passes up."""
        return state

    def cell(self, gx: Tensor, state, h_conv: ChebK2, graph: PeriodGraph):
        """One period of one layer, from the input's gate pre-activations `gx`."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        for m in (*self.x_convs, *self.h_convs, self.head):
            m.reset_parameters()


class GConvGRU(_Recurrent):
    """GRU whose input and hidden transforms are graph convolutions of the period's ties."""

    gates = 3

    def cell(self, gx: Tensor, h: Tensor, h_conv: ChebK2, graph: PeriodGraph) -> Tensor:
        """z, r gates, candidate from the reset hidden state, convex update."""
        k = self.hidden
        w0, w1 = h_conv.own.weight, h_conv.nbr.weight  # [3k, k]
        gh = h @ w0[:2 * k].T + graph.propagate(h @ w1[:2 * k].T)
        z = torch.sigmoid(gx[:, :k] + gh[:, :k])
        r = torch.sigmoid(gx[:, k:2 * k] + gh[:, k:])
        rh = r * h
        c = torch.tanh(gx[:, 2 * k:] + rh @ w0[2 * k:].T + graph.propagate(rh @ w1[2 * k:].T))
        return z * h + (1 - z) * c


class GConvLSTM(_Recurrent):
    """LSTM whose input and hidden transforms are graph convolutions of the period's ties."""

    gates = 4

    def initial_state(self, n: int, xs: Tensor):
        """Zero hidden and cell states."""
        return xs.new_zeros(n, self.hidden), xs.new_zeros(n, self.hidden)

    def output(self, state) -> Tensor:
        """The hidden state (not the cell state)."""
        return state[0]

    def cell(self, gx: Tensor, state, h_conv: ChebK2, graph: PeriodGraph):
        """Input, forget, output gates and the cell candidate."""
        h, c = state
        g = gx + h_conv(h, graph)
        i, f, o, u = g.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
        return torch.sigmoid(o) * torch.tanh(c), c


class NodeLSTM(nn.Module):
    """An LSTM over each node's own history; it never reads a tie."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(in_channels, hidden_channels, num_layers=num_layers,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_channels, out_channels)

    def forward(self, xs: Tensor, graphs: list[PeriodGraph] | None = None) -> Tensor:
        """Logits [T, N, out] from each node's sequence alone."""
        out, _ = self.lstm(xs)
        return self.head(self.dropout(out))

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        self.lstm.reset_parameters()
        self.head.reset_parameters()


class SnapshotModel(nn.Module):
    """A static model applied to each period's snapshot on its own: no memory across periods."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self._prepared: tuple[tuple, list] | None = None  # full-graph forwards of the inputs seen last

    def forward(self, xs: Tensor, graphs: list[PeriodGraph]) -> Tensor:
        """Logits [T, N, out]: period t from period t's inputs and ties only."""
        if any(g.edge_weight is not None for g in graphs):
            return torch.stack([self.model(xs[t], g.edge_index, edge_weight=g.edge_weight)
                                for t, g in enumerate(graphs)])
        key = (xs.data_ptr(), tuple(xs.shape), xs._version, tuple(id(g.edge_index) for g in graphs))
        if self._prepared is None or self._prepared[0] != key:  # training calls it with the same inputs
            self._prepared = (key, [full_graph_forward(self.model, xs[t], g.edge_index)
                                    for t, g in enumerate(graphs)])
        return torch.stack([forward() for forward in self._prepared[1]])

    def reset_parameters(self) -> None:
        """Re-initialise the wrapped model."""
        self.model.reset_parameters()


RECURRENT_CLASSES = {"gconv_gru": GConvGRU, "gconv_lstm": GConvLSTM, "lstm": NodeLSTM}
