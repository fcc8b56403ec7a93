"""Heterogeneous GNN forecasters of each place's next-period count, built from PyG.

Every model is `forward(snapshot: HeteroData) -> Tensor [N]`, a log expected count per node of its
`target` type (place: hotspots; person: involvements) up to an offset the trainer adds; the snapshot
holds `x` per node type and every relation (with `rev_*`).

- `hetero_sage`, `hetero_gat`, `hetero_gcn`: a homogeneous stack (conv + per-type skip linear,
  LayerNorm, ReLU, dropout; a linear head) turned heterogeneous by `torch_geometric.nn.to_hetero` (one conv per
  relation, summed per destination type). GAT runs without self-loops (`to_hetero` refuses them on
  bipartite relations); the skip linear carries each node's own state instead, as in PyG's hetero
  GAT example.
- GCN: `GCNConv` cannot take a (source, destination) pair: its normalisation and self-loops assume
  one node set. `BipartiteGCNConv` applies, per relation, the symmetric normalisation of that
  relation's adjacency, D_dst^-1/2 A D_src^-1/2 (degrees counted within the relation; GC-MC,
  van den Berg et al. 2017), to the same-type relations too; GCN's self-loop, which cannot join two
  types, becomes the per-type skip linear (R-GCN's self-connection), so a node's own weight is not
  tied to its neighbours' as in GCN. The sum over relations grows with a place's residents and
  visitors (a place of 50 residents sums 50 messages at 1/sqrt(50) each); the LayerNorm keeps the
  scale (without it, hetero_gcn started at a Poisson loss of 5 and ranked places worse than chance
  after 20 epochs on the default city, where SAGE and GAT were near 0.55 loss).
- `hgt`: a per-type input linear, then `HGTConv` layers (Hu et al. 2020), a linear head on places.
- `rgcn`: per-type input linear, the snapshot homogenised by `HeteroData.to_homogeneous` (node and
  edge types kept), `RGCNConv` layers (mean per relation, a root weight), a linear head on places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import (
    GATConv,
    HGTConv,
    Linear,
    MessagePassing,
    RGCNConv,
    SAGEConv,
    to_hetero,
)
from torch_geometric.typing import Metadata
from torch_geometric.utils import degree

from gnnrisk.errors import ConfigError, check_number, model_settings

HETERO_DEFAULTS: dict[str, Any] = {"hidden_channels": 32, "num_layers": 2, "dropout": 0.0, "lags": 3}
HETERO_EXTRA: dict[str, dict[str, Any]] = {
    "hetero_sage": {}, "hetero_gat": {"heads": 2}, "hetero_gcn": {}, "hgt": {"heads": 2}, "rgcn": {"num_bases": None}}


def hetero_config(name: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The model's settings: defaults overlaid with `cfg`; unknown keys and bad values refused."""
    out = model_settings(name, {**HETERO_DEFAULTS, **HETERO_EXTRA[name]}, cfg)
    hidden = check_number("model.hidden_channels", out["hidden_channels"], low=1, integer=True)
    check_number("model.num_layers", out["num_layers"], low=1, integer=True)
    check_number("model.dropout", out["dropout"], low=0.0, high=1.0, high_open=True)
    check_number("model.lags", out["lags"], low=1, integer=True)
    if "heads" in out:
        heads = check_number("model.heads", out["heads"], low=1, integer=True)
        if hidden % heads:
            raise ConfigError("model.heads", heads, f"expected a divisor of model.hidden_channels={hidden} "
                              "(the hidden width is split among the heads)")
    if out.get("num_bases") is not None:
        check_number("model.num_bases", out["num_bases"], low=1, integer=True)
    return out


class BipartiteGCNConv(MessagePassing):
    """GCN propagation over one relation: sum_j W x_j / sqrt(deg_src(j) deg_dst(i)), no self-loops."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(aggr="add")
        self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor | tuple[Tensor, Tensor], edge_index: Tensor) -> Tensor:
        """Messages from the source nodes to the destination nodes of `edge_index`."""
        x_src, x_dst = x if isinstance(x, tuple) else (x, x)
        size = (x_src.size(0), x_dst.size(0))
        src, dst = edge_index
        norm = degree(src, size[0])[src].clamp(min=1).rsqrt() * degree(dst, size[1])[dst].clamp(min=1).rsqrt()
        return self.propagate(edge_index, x=self.lin(x_src), norm=norm, size=size) + self.bias

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        """Each message scaled by its edge's normalisation."""
        return norm.unsqueeze(-1) * x_j


class _Stack(nn.Module):
    """A homogeneous template for `to_hetero`: (conv + skip linear, ReLU, dropout) x layers, a linear head."""

    def __init__(self, make_conv: Callable[[], nn.Module], hidden: int, num_layers: int, dropout: float):
        super().__init__()
        self.convs = nn.ModuleList([make_conv() for _ in range(num_layers)])
        self.skips = nn.ModuleList([Linear(-1, hidden) for _ in range(num_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(num_layers)])
        self.drop = nn.Dropout(dropout)  # a module, not F.dropout: to_hetero's trace would freeze `training`
        self.head = Linear(hidden, 1)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node outputs [N, 1]."""
        for conv, skip, norm in zip(self.convs, self.skips, self.norms):
            x = self.drop(norm(conv(x, edge_index) + skip(x)).relu())
        return self.head(x)


class ToHeteroForecaster(nn.Module):
    """A `_Stack` made heterogeneous by `to_hetero` (relations summed per destination type)."""

    def __init__(self, template: nn.Module, metadata: Metadata, target: str = "place"):
        super().__init__()
        self.net = to_hetero(template, metadata, aggr="sum")
        self.target = target

    def forward(self, snap: HeteroData) -> Tensor:
        """Log expected count per target node (before the offset)."""
        return self.net(snap.x_dict, snap.edge_index_dict)[self.target].squeeze(-1)


class _Projected(nn.Module):
    """Per-type input linears to a common width, and a linear head on the target type."""

    def __init__(self, metadata: Metadata, hidden: int, dropout: float, target: str = "place"):
        super().__init__()
        self.target = target
        self.inputs = nn.ModuleDict({t: Linear(-1, hidden) for t in metadata[0]})
        self.drop = nn.Dropout(dropout)
        self.head = Linear(hidden, 1)

    def project(self, snap: HeteroData) -> dict[str, Tensor]:
        """Every node type's features at the common width."""
        return {t: self.drop(self.inputs[t](snap[t].x).relu()) for t in snap.node_types}


class HGTForecaster(_Projected):
    """Input linears, `HGTConv` layers, a head on the target type."""

    def __init__(self, metadata: Metadata, hidden: int, num_layers: int, dropout: float, heads: int,
                 target: str = "place"):
        super().__init__(metadata, hidden, dropout, target)
        self.convs = nn.ModuleList([HGTConv(hidden, hidden, metadata, heads=heads) for _ in range(num_layers)])

    def forward(self, snap: HeteroData) -> Tensor:
        """Log expected count per place (before the offset)."""
        h = self.project(snap)
        for conv in self.convs:
            h = {t: self.drop(v) for t, v in conv(h, snap.edge_index_dict).items()}
        return self.head(h[self.target]).squeeze(-1)


class RGCNForecaster(_Projected):
    """Input linears, the homogenised snapshot, `RGCNConv` layers, a head on the target type."""

    def __init__(self, metadata: Metadata, hidden: int, num_layers: int, dropout: float, num_bases: int | None,
                 target: str = "place"):
        super().__init__(metadata, hidden, dropout, target)
        self.num_relations = len(metadata[1])
        self.convs = nn.ModuleList([RGCNConv(hidden, hidden, self.num_relations, num_bases=num_bases)
                                    for _ in range(num_layers)])

    def forward(self, snap: HeteroData) -> Tensor:
        """Log expected count per place (before the offset)."""
        h = self.project(snap)
        homo = snap.to_homogeneous(node_attrs=[], edge_attrs=[])  # node blocks in snap.node_types order
        x = torch.cat([h[t] for t in snap.node_types])
        for conv in self.convs:
            x = self.drop(conv(x, homo.edge_index, homo.edge_type).relu())
        target = snap.node_types.index(self.target)
        return self.head(x[homo.node_type == target]).squeeze(-1)


def _sage(metadata: Metadata, cfg: Mapping[str, Any], target: str = "place") -> nn.Module:
    """to_hetero(GraphSAGE)."""
    h = int(cfg["hidden_channels"])
    return ToHeteroForecaster(_Stack(lambda: SAGEConv((-1, -1), h), h, int(cfg["num_layers"]),
                                     float(cfg["dropout"])), metadata, target)


def _gat(metadata: Metadata, cfg: Mapping[str, Any], target: str = "place") -> nn.Module:
    """to_hetero(GAT), heads concatenated to the hidden width, no self-loops."""
    h, heads = int(cfg["hidden_channels"]), int(cfg["heads"])
    return ToHeteroForecaster(_Stack(lambda: GATConv((-1, -1), h // heads, heads=heads, add_self_loops=False),
                                     h, int(cfg["num_layers"]), float(cfg["dropout"])), metadata, target)


def _gcn(metadata: Metadata, cfg: Mapping[str, Any], target: str = "place") -> nn.Module:
    """to_hetero(GCN) with `BipartiteGCNConv` per relation."""
    h = int(cfg["hidden_channels"])
    return ToHeteroForecaster(_Stack(lambda: BipartiteGCNConv(-1, h), h, int(cfg["num_layers"]),
                                     float(cfg["dropout"])), metadata, target)


def _hgt(metadata: Metadata, cfg: Mapping[str, Any], target: str = "place") -> nn.Module:
    """HGT."""
    return HGTForecaster(metadata, int(cfg["hidden_channels"]), int(cfg["num_layers"]), float(cfg["dropout"]),
                         int(cfg["heads"]), target)


def _rgcn(metadata: Metadata, cfg: Mapping[str, Any], target: str = "place") -> nn.Module:
    """R-GCN on the homogenised graph."""
    bases = cfg.get("num_bases")
    return RGCNForecaster(metadata, int(cfg["hidden_channels"]), int(cfg["num_layers"]), float(cfg["dropout"]),
                          None if bases is None else int(bases), target)


HETERO_MODELS: dict[str, Callable[..., nn.Module]] = {  # (metadata, cfg, target="place") -> model
    "hetero_sage": _sage, "hetero_gat": _gat, "hetero_gcn": _gcn, "hgt": _hgt, "rgcn": _rgcn}
