"""ProGAP's modules (Sajadmanesh & Gatica-Perez, WSDM 2024): per-stage base MLPs and heads, NAP, the released model.

Stage i (0..K) reads x_0 = the node features and x_1..x_i = the cached noisy aggregations. Each x_j
goes through its own base MLP (last layer activated too, as in the authors' code); the base outputs
are combined (jumping knowledge, `cat` by default), L2-normalised row-wise and fed to stage i's head.
Training stage i updates bases 0..i (base i alone with `layerwise`) and head i. The embedding that
the next stage aggregates is base i's output on x_i. Plain `torch.nn.Linear` stacks (`gap_model.mlp`)
so that Opacus has per-sample gradient rules for every layer under node-level DP-SGD.

A stage's inputs are packed into one tensor per node, [x_0 | x_1 | ... | x_i], so that the same
module serves full-batch training (`train.loop.fit`) and per-example DP-SGD (`gap_dpsgd.dpsgd_fit`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.data.rewire import with_edges
from gnnrisk.errors import GnnriskError
from gnnrisk.privacy.gap_model import SumHop, mlp, sum_aggregate

JK_MODES = ("cat", "sum", "mean", "max")


def stage_base(in_channels: int, hidden_channels: int, num_layers: int, dropout: float,
               batch_norm: bool = False) -> nn.Sequential:
    """A base MLP whose last layer is also (batch-normed,) activated and dropped out: one stage's embedding."""
    tail: list[nn.Module] = [nn.BatchNorm1d(hidden_channels)] if batch_norm else []
    return nn.Sequential(mlp(in_channels, hidden_channels, hidden_channels, num_layers, dropout, batch_norm),
                         *tail, nn.SELU(), nn.Dropout(dropout))


def combine(embeddings: list[Tensor], mode: str) -> Tensor:
    """Jumping-knowledge combination of the stage's base outputs: concatenation, or an element-wise sum/mean/max."""
    if mode == "cat":
        return torch.cat(embeddings, dim=-1)
    stacked = torch.stack(embeddings, dim=0)
    return {"sum": stacked.sum, "mean": stacked.mean, "max": stacked.amax}[mode](dim=0)


class ProgressiveClassifier(nn.Module):
    """All K+1 stages of ProGAP's classifier; `set_stage(i)` selects which one answers and trains."""

    def __init__(self, num_features: int, hops: int, hidden_channels: int, out_channels: int, base_layers: int,
                 head_layers: int, dropout: float, batch_norm: bool = False, jk: str = "cat",
                 layerwise: bool = False):
        super().__init__()
        self.num_features, self.hidden_channels, self.jk, self.layerwise = num_features, hidden_channels, jk, layerwise
        self.bases = nn.ModuleList(stage_base(num_features if i == 0 else hidden_channels, hidden_channels,
                                              base_layers, dropout, batch_norm) for i in range(hops + 1))
        self.heads = nn.ModuleList(mlp((i + 1) * hidden_channels if jk == "cat" else hidden_channels,
                                       hidden_channels, out_channels, head_layers, dropout, batch_norm)
                                   for i in range(hops + 1))
        self.stage = 0
        self.set_stage(0)

    def set_stage(self, stage: int) -> "ProgressiveClassifier":
        """Answer with stage `stage`; only its head and bases 0..stage (base `stage` alone if layerwise) train."""
        self.stage = stage
        for i, base in enumerate(self.bases):
            base.requires_grad_(i == stage or (i < stage and not self.layerwise))
        for i, head in enumerate(self.heads):
            head.requires_grad_(i == stage)
        return self

    def train(self, mode: bool = True) -> "ProgressiveClassifier":
        """Switch the trainable parts' mode; frozen parts (layerwise bases) keep eval mode (batch-norm statistics)."""
        super().train(mode)
        for module in (*self.bases, *self.heads):
            if not any(p.requires_grad for p in module.parameters()):
                module.eval()
        return self

    def split(self, packed: Tensor) -> list[Tensor]:
        """Packed inputs [N, F + stage * H] as the list x_0 (features), x_1, ..., x_stage."""
        sizes = [self.num_features] + [self.hidden_channels] * self.stage
        if packed.size(-1) != sum(sizes):
            raise GnnriskError(f"ProGAP stage {self.stage} expects {sum(sizes)} input columns "
                               f"(features + {self.stage} aggregations), got {packed.size(-1)}")
        return list(packed.split(sizes, dim=-1))

    def forward(self, packed: Tensor) -> Tensor:
        """Logits of the current stage."""
        embeddings = [base(x) for base, x in zip(self.bases, self.split(packed))]
        return self.heads[self.stage](F.normalize(combine(embeddings, self.jk), p=2, dim=-1))

    def embed(self, packed: Tensor) -> Tensor:
        """The current stage's embedding, base `stage` on x_stage: what the next stage's NAP aggregates."""
        return self.bases[self.stage](self.split(packed)[-1])


def nap(embedding: Tensor, edge_index: Tensor, noise: Tensor | float) -> Tensor:
    """ProGAP's Normalize-Aggregate-Perturb: sum over in-edges j -> i of the row-normalised embeddings, plus `noise`.

    Every summed row has norm <= 1, so one directed edge j -> i moves the sum only in row i, by at most 1.
    Unlike GAP's hops, the noisy sum is not normalised again (the next stage's base MLP reads it as is).
    """
    return sum_aggregate(F.normalize(embedding, p=2, dim=-1), edge_index, embedding.size(0)) + noise


class CachedProgap(nn.Module):
    """A ProGAP model that answers from aggregations cached at training time: `forward(x, edge_index)`.

    x_0 is the given `x`; x_1..x_s come from the cache, so `edge_index` is ignored and `x` must hold the
    same nodes (rows) as the training graph. `embedders` (frozen copies of base i as it was when x_{i+1}
    was aggregated) are kept only to rebuild the aggregations over another graph (`explainable_progap`).
    """

    def __init__(self, classifier: ProgressiveClassifier, aggregations: Tensor,
                 embedders: nn.ModuleList | None = None):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("aggregations", aggregations)
        self.embedders = (embedders if embedders is not None else nn.ModuleList()).requires_grad_(False)

    def train(self, mode: bool = True) -> "CachedProgap":
        """Switch the classifier's mode; the embedder snapshots always stay in eval mode."""
        super().train(mode)
        self.embedders.eval()
        return self

    def packed(self, x: Tensor) -> Tensor:
        """[x | x_1 | ... | x_s] for every node of the training graph."""
        if x.size(0) != self.aggregations.size(0):
            raise GnnriskError(f"ProGAP answers only for the {self.aggregations.size(0)} nodes it aggregated "
                               f"at training time, got x with {x.size(0)} rows (subgraphs are not supported)")
        return torch.cat([x, self.aggregations.flatten(1)], dim=1)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Logits for every node of the training graph; `edge_index` is not used."""
        return self.classifier(self.packed(x))


class ExplainableProgap(nn.Module):
    """A released ProGAP model that re-runs every NAP over the graph it is given, with the training noise.

    Input rows are [features | noise of aggregation 1 | ... | noise of aggregation K], so any node subset
    carries its own noise. On the training graph the output equals `CachedProgap`'s; an edge mask now
    changes the aggregations, so the model can be explained link by link. Such explanations read the
    graph again: they are not covered by the mechanism's epsilon.
    """

    def __init__(self, classifier: ProgressiveClassifier, embedders: nn.ModuleList, num_features: int):
        super().__init__()
        self.classifier, self.embedders, self.num_features = classifier, embedders, num_features
        self.hop_layers = nn.ModuleList(SumHop(classifier.hidden_channels) for _ in embedders)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits from features and per-node aggregation noise, aggregating over `edge_index`."""
        noise = x[:, self.num_features:].view(x.size(0), len(self.hop_layers), -1)
        xs = [x[:, :self.num_features]]
        for k, (embedder, hop) in enumerate(zip(self.embedders, self.hop_layers)):
            xs.append(hop(F.normalize(embedder(xs[-1]), p=2, dim=-1), edge_index) + noise[:, k])
        return self.classifier(torch.cat(xs, dim=1))


def explainable_progap(model: CachedProgap, data: Data, edge_index: Tensor, noise: Tensor) -> tuple[nn.Module, Data]:
    """`ExplainableProgap` and its graph: the aggregated edges, features joined with the training noise [N, K, H]."""
    graph = with_edges(data, edge_index)
    graph.x = torch.cat([data.x, noise.flatten(1)], dim=1)
    return ExplainableProgap(model.classifier, model.embedders, data.num_features).eval(), graph
