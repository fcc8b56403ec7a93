"""GAP's three modules (Sajadmanesh et al., USENIX Security 2023): encoder, perturbed aggregation, classifier.

Plain `torch.nn.Linear` stacks (not PyG's `MLP`) so that Opacus has per-sample gradient rules for
every layer when the node-level variant trains them with DP-SGD.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from gnnrisk.data.rewire import with_edges
from gnnrisk.errors import GnnriskError


def mlp(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int, dropout: float,
        batch_norm: bool = False) -> nn.Sequential:
    """Linear layers with SELU (GAP's default activation), dropout and optional batch norm between them."""
    layers: list[nn.Module] = []
    sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
    for i in range(num_layers):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < num_layers - 1:
            if batch_norm:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers += [nn.SELU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class GapEncoder(nn.Module):
    """Encoder module: an MLP over features only, trained with a linear head on the labels."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 dropout: float, batch_norm: bool = False):
        super().__init__()
        self.body = mlp(in_channels, hidden_channels, hidden_channels, num_layers, dropout, batch_norm)
        self.head = nn.Linear(hidden_channels, out_channels)

    def embed(self, x: Tensor) -> Tensor:
        """Row-wise L2-normalised embeddings: what the aggregation module receives as hop 0."""
        return F.normalize(self.body(x), p=2, dim=-1)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Logits from features alone (used only to pre-train the encoder; edges are ignored)."""
        return self.head(self.embed(x))


def sum_aggregate(x: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
    """Row i of the result is the sum of x_j over the edges j -> i (edge_index[0] = j, edge_index[1] = i)."""
    return scatter(x[edge_index[0]], edge_index[1], dim=0, dim_size=num_nodes, reduce="sum")


def hop_noise(like: Tensor, hops: int, noise_std: float, generator: torch.Generator | None = None) -> Tensor:
    """The Gaussian noise of hops 1..K as [N, K, H] (zeros without noise), drawn hop after hop from `generator`."""
    if noise_std <= 0:
        return like.new_zeros(like.size(0), hops, like.size(1))
    return torch.stack([noise_std * torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
                        for _ in range(hops)], dim=1)


def perturbed_aggregations(x0: Tensor, edge_index: Tensor, hops: int, noise_std: float,
                           generator: torch.Generator | None = None, released: list[Tensor] | None = None) -> Tensor:
    """GAP's aggregation perturbation: hops 0..K stacked as [N, K+1, H], each row L2-normalised.

    hop_k = normalize(A hop_{k-1} + N(0, noise_std^2 I)). Every input row has norm <= 1, so one edge
    j -> i moves the sum only in row i, by at most 1 in L2: the sensitivity the accountant uses.
    `released`, if given, receives each hop's noisy sum before normalisation (what the mechanism releases).
    """
    num_nodes = x0.size(0)
    noise = hop_noise(x0, hops, noise_std, generator)
    return noisy_hops(x0, noise, lambda k, h: sum_aggregate(h, edge_index, num_nodes), released)


def noisy_hops(x0: Tensor, noise: Tensor, aggregate: Callable[[int, Tensor], Tensor],
               released: list[Tensor] | None = None) -> Tensor:
    """Hops 0..K as [N, K+1, H]: hop_0 = normalize(x0), hop_k = normalize(aggregate(k-1, hop_{k-1}) + noise[:, k-1]).

    `released`, if given, receives the noisy sums aggregate(k-1, hop_{k-1}) + noise[:, k-1] before normalisation.
    """
    x = F.normalize(x0, p=2, dim=-1)
    out = [x]
    for k in range(noise.size(1)):
        summed = aggregate(k, x) + noise[:, k]
        if released is not None:
            released.append(summed)
        x = F.normalize(summed, p=2, dim=-1)
        out.append(x)
    return torch.stack(out, dim=1)


def bound_out_degree(edge_index: Tensor, num_nodes: int, max_degree: int,
                     generator: torch.Generator | None = None) -> Tensor:
    """Keep at most `max_degree` out-edges j -> * per source node j, chosen uniformly at random.

    Vectorised: shuffle the edges, stable-sort them by source, keep the first `max_degree` of each run
    (GAP's BoundOutDegree). Node j then enters at most `max_degree` aggregation sums.
    """
    perm = torch.randperm(edge_index.size(1), generator=generator, device="cpu").to(edge_index.device)
    shuffled = edge_index[:, perm]
    order = torch.sort(shuffled[0], stable=True).indices
    src_sorted = shuffled[0, order]
    counts = torch.bincount(src_sorted, minlength=num_nodes)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(src_sorted.numel(), device=edge_index.device) - start[src_sorted]
    return shuffled[:, order[rank < max_degree]]


class GapClassifier(nn.Module):
    """Classification module: one base MLP per hop, concatenated, then a head MLP (GAP's `cat` combination)."""

    def __init__(self, num_hops: int, hidden_channels: int, out_channels: int, base_layers: int,
                 head_layers: int, dropout: float, batch_norm: bool = False):
        super().__init__()
        self.bases = nn.ModuleList(mlp(hidden_channels, hidden_channels, hidden_channels, base_layers,
                                       dropout, batch_norm) for _ in range(num_hops + 1))
        self.head = nn.Sequential(nn.SELU(), nn.Dropout(dropout),
                                  mlp((num_hops + 1) * hidden_channels, hidden_channels, out_channels,
                                      head_layers, dropout, batch_norm))

    def forward(self, hops: Tensor) -> Tensor:
        """Logits from stacked hop embeddings [B, K+1, H]."""
        return self.head(torch.cat([base(hops[:, k]) for k, base in enumerate(self.bases)], dim=-1))


class CachedGap(nn.Module):
    """The released GAP model: `forward(x, edge_index)` answers from the cached noisy aggregations.

    Hop 0 is recomputed from the given `x` by the (frozen) encoder, as GAP does for a node's own
    features; hops 1..K are the noisy aggregations computed once at training time. `edge_index` is
    ignored: the graph is never queried again, so edge masks or perturbed graphs have no effect and
    `x` must hold the same nodes (rows) as the training graph.
    """

    def __init__(self, encoder: GapEncoder, classifier: GapClassifier, aggregations: Tensor):
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.classifier = classifier
        self.register_buffer("aggregations", aggregations)

    def train(self, mode: bool = True) -> "CachedGap":
        """Switch the classifier's mode; the pre-trained encoder always stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Logits for every node of the training graph; `edge_index` is not used."""
        if x.size(0) != self.aggregations.size(0):
            raise GnnriskError(f"GAP answers only for the {self.aggregations.size(0)} nodes it aggregated "
                               f"at training time, got x with {x.size(0)} rows (subgraphs are not supported)")
        hops = torch.cat([self.encoder.embed(x).unsqueeze(1), self.aggregations[:, 1:]], dim=1)
        return self.classifier(hops)


class SumHop(MessagePassing):
    """One un-normalised sum over in-edges, as a message-passing layer so that PyG explainers can mask its edges."""

    def __init__(self, channels: int):
        super().__init__(aggr="add")
        self.in_channels = self.out_channels = channels  # read by GraphMaskExplainer to size its gates

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Row i = sum of x_j over the edges j -> i (`sum_aggregate`)."""
        return self.propagate(edge_index, x=x)


class ExplainableGap(nn.Module):
    """A released GAP model that re-aggregates over the graph it is given, with the noise drawn at training.

    Its input rows are [features | noise of hop 1 | ... | noise of hop K], so that any node subset
    (a K-hop subgraph) carries its own noise. On the training graph its output equals `CachedGap`'s;
    an edge mask now changes the aggregations, so the model can be explained link by link. Such
    explanations read the graph again: they are not covered by the mechanism's epsilon.
    """

    def __init__(self, encoder: GapEncoder, classifier: GapClassifier, num_features: int, hops: int):
        super().__init__()
        self.encoder, self.classifier, self.num_features = encoder, classifier, num_features
        channels = encoder.head.in_features
        self.hop_layers = nn.ModuleList(SumHop(channels) for _ in range(hops))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits from features and per-node hop noise, aggregating over `edge_index`."""
        noise = x[:, self.num_features:].view(x.size(0), len(self.hop_layers), -1)
        hops = noisy_hops(self.encoder.embed(x[:, :self.num_features]), noise,
                          lambda k, h: self.hop_layers[k](h, edge_index))
        return self.classifier(hops)


def explainable_gap(model: CachedGap, data: Data, edge_index: Tensor, noise_std: float,
                    generator: torch.Generator) -> tuple[nn.Module, Data]:
    """`ExplainableGap` and the graph to explain it on: the aggregated edges, features joined with the
    noise regenerated from `generator` (seeded as at training time)."""
    hops = len(model.classifier.bases) - 1
    head = model.encoder.head
    like = torch.empty(data.num_nodes, head.in_features, device=head.weight.device, dtype=head.weight.dtype)
    noise = hop_noise(like, hops, noise_std, generator)  # the embeddings' shape: the same draws as at training
    graph = with_edges(data, edge_index)
    graph.x = torch.cat([data.x, noise.flatten(1)], dim=1)
    return ExplainableGap(model.encoder, model.classifier, data.num_features, hops).eval(), graph
