"""DPDGC's modules (Chien et al., NeurIPS 2023): adjacency-row encoder with bounded columns, LINKX classifier.

The graph encoder reads node i's adjacency row a_i (its in-neighbours j, edges j -> i) through one linear
layer W (hidden x N, with bias): z_i = W a_i + b = sum over j in row i of column W[:, j], plus b. Rows are
kept sparse (CSR) and z is an `embedding_bag` sum over the rows of `weight` = W^T. Training (DP-SGD) clips
each example's gradient exactly without materialising it: z_i enters the loss of example i only, so with
g_i = d loss_i / d z_i the example's gradient is g_i on every column of its row and on the bias, of norm
||g_i|| sqrt(|row i| + 1) (ghost clipping for one linear layer). After every optimiser step (and before
the release) every column of W is projected to norm <= `norm_scale`, which bounds what one edge can move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops

from gnnrisk.data.rewire import with_edges
from gnnrisk.errors import GnnriskError
from gnnrisk.privacy.diagnostics import DpsgdTrace
from gnnrisk.privacy.gap_dpsgd import poisson_schedule
from gnnrisk.privacy.gap_model import SumHop, mlp


@dataclass
class AdjacencyRows:
    """Row i of the binary adjacency matrix: the in-neighbours j of node i (edges j -> i), in CSR form.

    Built with self-loops dropped and duplicate edges merged, so that every entry is 0 or 1.
    """

    rowptr: Tensor  # [N + 1]
    col: Tensor     # [nnz], sorted by row

    @classmethod
    def from_edges(cls, edge_index: Tensor, num_nodes: int) -> "AdjacencyRows":
        """CSR rows of `edge_index` (edge_index[0] = j, edge_index[1] = i) over `num_nodes` nodes."""
        edges, _ = remove_self_loops(edge_index)
        edges = coalesce(edges.flip(0), num_nodes=num_nodes)  # sorted by destination i, then source j
        counts = torch.bincount(edges[0], minlength=num_nodes)
        rowptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        return cls(rowptr=rowptr, col=edges[1])

    @property
    def num_nodes(self) -> int:
        """Number of rows (nodes)."""
        return self.rowptr.numel() - 1

    @property
    def degree(self) -> Tensor:
        """Entries per row: each node's in-degree in the adjacency the encoder reads."""
        return self.rowptr[1:] - self.rowptr[:-1]

    @property
    def edge_index(self) -> Tensor:
        """The edges j -> i of the rows, as [2, nnz]."""
        dst = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.col.device), self.degree)
        return torch.stack([self.col, dst])

    def gather(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(indices, offsets, bag) of the rows of `nodes`: `embedding_bag` input, and each index's row position."""
        counts = self.degree[nodes]
        offsets = torch.cumsum(counts, 0) - counts
        bag = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), counts)
        pos = torch.arange(bag.numel(), device=nodes.device) - offsets[bag] + self.rowptr[nodes][bag]
        return self.col[pos], offsets, bag


def random_head(hidden: int, num_classes: int) -> Tensor:
    """DPDGC's frozen head: the first `num_classes` rows of a random orthogonal matrix, scaled by sqrt(6 / hidden)."""
    u, _, vh = torch.linalg.svd(torch.randn(hidden, hidden))
    return (u @ vh)[:num_classes] * math.sqrt(6.0 / hidden)


class AdjacencyEncoder(nn.Module):
    """DPDGC's graph encoder: z = W a + b on adjacency rows, then SELU and a frozen random head (no bias).

    `weight` is W^T ([N, hidden]): its row j is the column of W that node j adds to each row it is in.
    Initialised as `nn.Linear(N, hidden)` (uniform in +-1/sqrt(N)).
    """

    def __init__(self, num_nodes: int, hidden: int, num_classes: int):
        super().__init__()
        bound = 1.0 / math.sqrt(num_nodes)
        self.weight = nn.Parameter(torch.empty(num_nodes, hidden).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(hidden).uniform_(-bound, bound))
        self.register_buffer("head", random_head(hidden, num_classes))

    def embed(self, index: Tensor, offsets: Tensor) -> Tensor:
        """z for each bag of column indices (`AdjacencyRows.gather`): the sum of their W columns, plus b."""
        return F.embedding_bag(index, self.weight, offsets, mode="sum") + self.bias

    def classify(self, z: Tensor) -> Tensor:
        """Logits from embeddings z: the frozen head on SELU(z)."""
        return F.selu(z) @ self.head.t()

    @torch.no_grad()
    def project_(self, norm_scale: float) -> None:
        """Scale every column of W whose norm exceeds `norm_scale` back to `norm_scale` (in place)."""
        norms = self.weight.norm(dim=1, keepdim=True)
        self.weight.mul_((norm_scale / norms.clamp_min(1e-12)).clamp(max=1.0))

    @torch.no_grad()
    def release(self, rows: AdjacencyRows) -> Tensor:
        """The noise-free graph embedding xA = A W^T + b of every node ([N, hidden])."""
        return self.embed(rows.col, rows.rowptr[:-1])


def clipped_gradient_sum(encoder: AdjacencyEncoder, rows: AdjacencyRows, nodes: Tensor, labels: Tensor,
                         max_grad_norm: float) -> tuple[Tensor, Tensor, Tensor, float]:
    """Sum over `nodes` of each example's gradient clipped to `max_grad_norm`: (weight [N, H], bias [H],
    per-example norms before clipping [B], summed loss). Example i = (row i, labels[k] for nodes[k] = i)."""
    weight, bias = encoder.weight, encoder.bias
    if nodes.numel() == 0:  # an empty Poisson batch: the noise alone is released
        return torch.zeros_like(weight), torch.zeros_like(bias), weight.new_zeros(0), 0.0
    index, offsets, bag = rows.gather(nodes)
    with torch.no_grad():
        z = encoder.embed(index, offsets)
    z.requires_grad_(True)
    loss = F.cross_entropy(encoder.classify(z), labels, reduction="sum")
    (g,) = torch.autograd.grad(loss, z)  # row k: d loss_k / d z_k (loss_k depends on z_k only)
    norms = g.norm(dim=1) * (rows.degree[nodes].to(g.dtype) + 1.0).sqrt()
    clipped = g * (max_grad_norm / norms.clamp_min(1e-12)).clamp(max=1.0).unsqueeze(1)
    weight_sum = torch.zeros_like(weight).index_add_(0, index, clipped[bag])
    return weight_sum, clipped.sum(0), norms, float(loss.detach())


@dataclass(frozen=True)
class EncoderPlan:
    """DP-SGD of the encoder: epochs of round(1/q) Poisson steps, clipping C, noise std sigma C, Adam, projection."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    noise_multiplier: float
    max_grad_norm: float
    norm_scale: float


def train_encoder(encoder: AdjacencyEncoder, rows: AdjacencyRows, nodes: Tensor, labels: Tensor, plan: EncoderPlan,
                  seed: int, trace: DpsgdTrace | None = None) -> list[dict[str, float]]:
    """DP-SGD on the adjacency rows of `nodes` (labels `labels`); returns the per-epoch mean training loss.

    Each step samples every node with probability q (Poisson), sums the clipped per-example gradients,
    adds N(0, (sigma C)^2) to every coordinate of W and b, divides by the expected batch size, takes an
    Adam step (weight decay is data-independent) and projects W's columns to norm <= norm_scale. The last
    weights are kept: a validation loss would read private rows. `trace` records signal against noise.
    """
    n = nodes.numel()
    q, per_epoch = poisson_schedule(n, plan.batch_size)
    expected = max(1, round(q * n))
    optimizer = torch.optim.Adam([encoder.weight, encoder.bias], lr=plan.lr, weight_decay=plan.weight_decay)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    std = plan.noise_multiplier * plan.max_grad_norm
    encoder.project_(plan.norm_scale)
    history: list[dict[str, float]] = []
    if trace is not None:
        trace.window = per_epoch  # the drowned verdict reads the gradient accumulated per epoch
    for epoch in range(1, plan.epochs + 1):
        total, count = 0.0, 0
        for _ in range(per_epoch):
            chosen = (torch.rand(n, generator=generator) < q).to(nodes.device)
            weight_sum, bias_sum, norms, loss = clipped_gradient_sum(encoder, rows, nodes[chosen], labels[chosen],
                                                                     plan.max_grad_norm)
            noisy = [s + std * torch.randn(s.shape, generator=generator).to(s.device) if std > 0 else s
                     for s in (weight_sum, bias_sum)]
            if trace is not None:
                trace.record(norms.detach(), [weight_sum, bias_sum], noisy)
            optimizer.zero_grad(set_to_none=True)
            encoder.weight.grad, encoder.bias.grad = noisy[0] / expected, noisy[1] / expected
            optimizer.step()
            encoder.project_(plan.norm_scale)
            total, count = total + loss, count + int(norms.numel())
        history.append({"epoch": epoch, "train_loss": total / max(count, 1)})
    encoder.requires_grad_(False)
    return history


class LinkxClassifier(nn.Module):
    """DPDGC's classifier (LINKX-style) on [X | xA]: features and graph embedding meet only here.

    xX = MLP_X(X); h = SELU(dropout(BN(cat(xX, xA)))); h = MLP_W(h) + xX + xA; then BN, dropout, SELU
    and the head MLP. Batch norm only when `batch_norm` (not under DP-SGD: Opacus cannot clip through it).
    """

    def __init__(self, num_features: int, hidden: int, num_classes: int, base_layers: int, head_layers: int,
                 dropout: float, batch_norm: bool):
        super().__init__()
        self.num_features, self.dropout = num_features, dropout
        self.feature_mlp = mlp(num_features, hidden, hidden, base_layers, dropout, batch_norm)
        self.mix_mlp = mlp(2 * hidden, hidden, hidden, base_layers, dropout, batch_norm)
        self.norm_in = nn.BatchNorm1d(2 * hidden) if batch_norm else nn.Identity()
        self.norm_out = nn.BatchNorm1d(hidden) if batch_norm else nn.Identity()
        self.head = mlp(hidden, hidden, num_classes, head_layers, dropout, batch_norm)

    def forward(self, x: Tensor) -> Tensor:
        """Logits from rows [features | graph embedding]."""
        xx, xa = self.feature_mlp(x[:, : self.num_features]), x[:, self.num_features:]
        h = F.selu(F.dropout(self.norm_in(torch.cat([xx, xa], dim=-1)), self.dropout, self.training))
        h = self.mix_mlp(h) + xx + xa
        return self.head(F.selu(F.dropout(self.norm_out(h), self.dropout, self.training)))


class CachedDpdgc(nn.Module):
    """The released DPDGC model: `forward(x, edge_index)` reads the noisy graph embedding released once.

    `edge_index` is ignored (the graph is never queried again); `x` must hold the training graph's nodes.
    """

    def __init__(self, classifier: LinkxClassifier, released: Tensor):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("released", released)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Logits for every node of the training graph."""
        if x.size(0) != self.released.size(0):
            raise GnnriskError(f"DPDGC answers only for the {self.released.size(0)} nodes whose graph embedding "
                               f"it released, got x with {x.size(0)} rows (subgraphs are not supported)")
        return self.classifier(torch.cat([x, self.released], dim=-1))


class ExplainableDpdgc(nn.Module):
    """The released model re-summing W's columns over the graph it is given, with the training noise.

    Input rows are [features | the node's column of W | the node's release noise]: on the training graph
    the output equals `CachedDpdgc`'s; edge masks now move the embedding, so explainers can mask links.
    Such explanations read the graph again: they are not covered by epsilon.
    """

    def __init__(self, classifier: LinkxClassifier, bias: Tensor, num_features: int):
        super().__init__()
        self.classifier, self.num_features = classifier, num_features
        self.register_buffer("bias", bias)
        self.sum = SumHop(bias.numel())

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits from features, W columns and noise, summing the columns over `edge_index`."""
        feats, columns, noise = x.split([self.num_features, self.bias.numel(), self.bias.numel()], dim=-1)
        return self.classifier(torch.cat([feats, self.sum(columns, edge_index) + self.bias + noise], dim=-1))


def explainable_dpdgc(model: CachedDpdgc, encoder: AdjacencyEncoder, rows: AdjacencyRows, data: Data,
                      scale: float = 1.0) -> tuple[nn.Module, Data]:
    """`ExplainableDpdgc` and its graph: the rows' edges, features joined with W's columns and the release noise
    (all times `scale`, the factor the classifier reads the release with)."""
    noise = model.released - scale * encoder.release(rows)
    graph = with_edges(data, rows.edge_index)
    graph.x = torch.cat([data.x, scale * encoder.weight.detach(), noise], dim=1)
    return ExplainableDpdgc(model.classifier, scale * encoder.bias.detach(), data.num_features).eval(), graph
