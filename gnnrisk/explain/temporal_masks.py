"""Message masks on copies of the population: the forecaster's weighted forwards that the explainers over periods vary."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gnnrisk.explain.temporal_truth import Reach
from gnnrisk.models.full_batch import SparseOperator, csr
from gnnrisk.models.recurrent import PeriodGraph


class CopiesGraph:
    """One period's graph for S copies of the population, each with its own mask on its own edges.

    Duck-types `PeriodGraph.propagate` for S * N nodes (copy i = nodes i*N .. i*N + N - 1). A mask
    value w_e scales the message of directed edge e after the symmetric normalisation of the period's
    graph (PyG's explain masks, as the static stage): copy i computes `A_hat h` with A_hat[dst, src]
    = w_e / sqrt(deg(src) deg(dst)) on its masked edges and the plain value elsewhere; w = 1 is the
    plain graph, w = 0 removes the message. (The models' own weighted path, gcn_norm of the weighted
    graph, renormalises the degrees: scaling every tie of a node by w > 0 leaves its normalised
    weights nearly unchanged and only w = 0 removes them, a jump at 0 that breaks integrated
    gradients' completeness.) Computed as the plain operator of all copies at once (one block-diagonal
    CSR product) plus, per copy, (w - 1) times the messages of its masked edges only.
    """

    def __init__(self, graph: PeriodGraph, masked: list[Tensor]):
        n, copies = graph.num_nodes, len(masked)
        self.n, self.copies = n, copies
        ei = graph.edge_index
        src, dst = ei
        device = src.device
        normed, value = gcn_norm(ei, None, n, add_self_loops=False)
        one = csr(normed[1], normed[0], value, n)  # rows = targets
        one_t = csr(normed[0], normed[1], value, n)
        self.op, self.op_t = block_diagonal(one, copies), block_diagonal(one_t, copies)
        deg = torch.zeros(n, device=device).index_add_(0, dst, torch.ones(dst.numel(), device=device))
        dis = torch.where(deg > 0, deg.clamp(min=1).pow(-0.5), torch.zeros_like(deg))
        sizes = torch.tensor([ids.numel() for ids in masked], device=device, dtype=torch.long)
        shift = torch.repeat_interleave(torch.arange(copies, device=device) * n, sizes)
        ids = torch.cat(list(masked)) if masked else torch.empty(0, dtype=torch.long, device=device)
        self.src_f, self.dst_f = src[ids] + shift, dst[ids] + shift
        self.norm = dis[src[ids]] * dis[dst[ids]]
        self.change: Tensor | None = None

    def set_weights(self, weights: Tensor) -> None:
        """The copies' mask values on their masked edges, concatenated in copy order (differentiable)."""
        self.change = (weights - 1.0) * self.norm

    def propagate(self, h: Tensor) -> Tensor:
        """Per copy, `A_hat h` with that copy's mask."""
        out = SparseOperator.apply(self.op, self.op_t, h)
        if self.change is None or not self.change.numel():
            return out
        return out.index_add(0, self.dst_f, self.change.unsqueeze(-1) * h[self.src_f])


def block_diagonal(matrix: Tensor, copies: int) -> Tensor:
    """The CSR matrix with `copies` copies of the N x N CSR `matrix` on its diagonal."""
    n, nnz = matrix.size(0), matrix.values().numel()
    crow, col = matrix.crow_indices().long(), matrix.col_indices().long()
    if copies == 1:
        return matrix
    index = torch.arange(copies, device=crow.device)
    crows = torch.cat([(crow[:-1].unsqueeze(0) + (index * nnz).unsqueeze(1)).flatten(),
                       torch.tensor([copies * nnz], device=crow.device)])
    cols = (col.unsqueeze(0) + (index * n).unsqueeze(1)).flatten()
    small = copies * max(n, nnz) < 2**31
    dtype = torch.int32 if small else torch.int64
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crows.to(dtype), cols.to(dtype), matrix.values().repeat(copies),
                                       (copies * n, copies * n), check_invariants=False)


class Explained:
    """The last origin's forecaster, ready for weighted forwards on copies of the population."""

    def __init__(self, model: nn.Module, xs: Tensor, graphs: list[PeriodGraph], horizon_index: int,
                 num_horizons: int):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.xs, self.graphs = xs, graphs
        self.k, self.num_h = horizon_index, num_horizons
        self.n = graphs[0].num_nodes
        self.origin = len(graphs) - 1

    def copies(self, weighted: list[list[Tensor]]) -> list[CopiesGraph]:
        """Per period, the graph of len(weighted) copies; copy i weighs its edges `weighted[i][s]` in period s."""
        return [CopiesGraph(graph, [w[s] for w in weighted]) for s, graph in enumerate(self.graphs)]

    def run(self, graphs: list[CopiesGraph], nodes: list[int], weights: list[Tensor]) -> Tensor:
        """Logits [S, C] of copy i's node `nodes[i]` with the copies' `weights[s]` in period s."""
        for g, w in zip(graphs, weights):
            g.set_weights(w)
        s = len(nodes)
        out = self.model(self.xs.repeat(1, s, 1), graphs)[self.origin]
        out = out.view(s, self.n, self.num_h, -1)[:, :, self.k]
        return out[torch.arange(s, device=out.device), torch.tensor(nodes, device=out.device)]

    def logits(self, nodes: list[int], weighted: list[list[Tensor]], weights: list[Tensor]) -> Tensor:
        """Logits [S, C] of copy i's node `nodes[i]` with copy i's weights on its `weighted[i][s]` edges."""
        return self.run(self.copies(weighted), nodes, weights)

    def plain_logits(self) -> Tensor:
        """Logits [N, C] of every node on the unweighted graphs (the forecast itself)."""
        with torch.no_grad():
            out = self.model(self.xs, self.graphs)[self.origin]
        return out.view(self.n, self.num_h, -1)[:, self.k]


def log_odds(logits: Tensor, cls: Tensor) -> Tensor:
    """Per row, logit of class `cls` minus the log-sum-exp of the other classes."""
    own = logits.gather(1, cls.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, cls.view(-1, 1), float("-inf"))
    return own - others.logsumexp(1)


def chunks(items: list, size: int) -> list[list]:
    """`items` in consecutive lists of at most `size`."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def edge_weights(reaches: list[Reach], fill: list[Tensor]) -> list[Tensor]:
    """Per period, the copies' weights concatenated: copy i's candidate edges take `fill[i]` (a pair value each)."""
    periods = len(reaches[0].edges)
    return [torch.cat([f[r.pair_of_edge[s]] for r, f in zip(reaches, fill)]) for s in range(periods)]


def edge_to_pairs(reach: Reach, values: list[Tensor]) -> Tensor:
    """Per candidate pair, the mean of the per-directed-edge `values` (one tensor per period) over its edges."""
    total = torch.zeros(reach.num_pairs, dtype=torch.float64)
    count = torch.zeros(reach.num_pairs, dtype=torch.float64)
    for s, vals in enumerate(values):  # periods
        index = reach.pair_of_edge[s].cpu()
        total.index_add_(0, index, vals.detach().double().cpu())
        count.index_add_(0, index, torch.ones(index.numel(), dtype=torch.float64))
    return total / count.clamp(min=1)


def split_grad(grad: list[Tensor], reaches: list[Reach]) -> list[list[Tensor]]:
    """Per copy, per period: its slice of the concatenated per-period gradients."""
    out: list[list[Tensor]] = [[] for _ in reaches]
    for s, g in enumerate(grad):  # periods
        sizes = [r.edges[s].numel() for r in reaches]
        for i, part in enumerate(torch.split(g, sizes)):
            out[i].append(part)
    return out
