"""The run's forecaster as an attacker of the city meets it: trained at the run's latest origin on what the
mechanism released, queried with perturbed inputs, and read at the origins it was trained on.

`fit_forecaster` trains the run's model (a heterogeneous GNN, or a recurrent forecaster of the temporal module)
as `gnnrisk.train.city_forecast` trains it for the run's latest origin t: refit=origin on origins 0..t-1 with
the seed seed * 1000 + t, refit=once on the origins before the first evaluated origin; the same held-out nodes.
Its forecast at t is therefore the run's own (tested). `loss_mask` keeps the labels of some target nodes out of
the loss (membership inference). `perturbed_log_rates` answers B queries per forward pass over a disjoint union
of B copies of the inputs, copy b with one node's input row scaled: no loop over nodes, only over chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from gnnrisk.attack.queries import MAX_BATCH_EDGES, replicate_edges
from gnnrisk.errors import ConfigError
from gnnrisk.models.hetero import HETERO_MODELS, hetero_config
from gnnrisk.models.recurrent import TEMPORAL_MODELS, PeriodGraph
from gnnrisk.train.city_forecast import (
    TARGET_GRAPH,
    CityForecast,
    Record,
    _fit,
    _fit_recurrent,
    _val_units,
    period_inputs,
    recurrent_config,
    snapshot,
    train_config,
)

TRAINED = (*HETERO_MODELS, *TEMPORAL_MODELS)  # the forecasters trained on labels; the others are maps of the record


@dataclass
class CityRun:
    """What the city's attacks read of a run: its data, mechanism, model and settings, origins, seed and forecast."""

    data: HeteroData
    mechanism: Any  # a gnnrisk.privacy.city.mechanisms.CityMechanism
    model: str
    model_cfg: Mapping[str, Any]
    train_cfg: Mapping[str, Any]
    target: str
    origins: list[int]
    seed: int
    forecast: CityForecast | None = None

    def generator(self, salt: int) -> torch.Generator:
        """A seeded generator per attack (as `AttackContext.generator`), so that attacks do not share draws."""
        return torch.Generator().manual_seed(self.seed * 1009 + salt)

    def released(self) -> HeteroData:
        """The city the run's forecaster read: the mechanism's release (the true city under privacy=none)."""
        return self.mechanism.release(self.data, self.seed)[0]


@dataclass
class FittedForecaster:
    """A trained forecaster, its offset and its inputs: snapshots 0..origin (GNN) or per-period rows (recurrent)."""

    model: nn.Module
    offset: Tensor
    target: str
    origin: int  # the origin the attacker queries (the run's latest)
    end: int  # trained on origins 0..end-1 (labels of periods 1..end)
    counts: Tensor  # recorded counts [N, periods] of the target type: the labels
    snaps: list[HeteroData] | None = None
    xs: Tensor | None = None
    graph: PeriodGraph | None = None

    @torch.no_grad()
    def log_rates(self, origins: list[int]) -> Tensor:
        """Log forecasts [len(origins), N] (each origin's snapshot, or the recurrence's output at that period)."""
        if self.snaps is not None:
            return torch.stack([self.model(self.snaps[s]) + self.offset for s in origins])
        last = max(origins) + 1
        out = self.model(self.xs[:last], [self.graph] * last).squeeze(-1) + self.offset
        return out[origins]

    def training_targets(self) -> tuple[Tensor, Tensor]:
        """Log forecasts and labels [end, N] at the origins the model was trained on."""
        origins = list(range(self.end))
        return self.log_rates(origins), self.counts[:, 1: self.end + 1].T

    @torch.no_grad()
    def perturbed_log_rates(self, node_type: str, nodes: Tensor, scale: float, chunk: int) -> Tensor:
        """Log forecasts [len(nodes), N] at `origin`, row i with the input row of `nodes[i]` (of `node_type`)
        multiplied by `scale`; `chunk` copies per forward pass, fewer when the union would pass MAX_BATCH_EDGES."""
        rows = []
        if self.snaps is not None:
            snap = self.snaps[self.origin]
            edges = sum(snap[rel].edge_index.size(1) for rel in snap.edge_types)
            step = max(1, min(chunk, MAX_BATCH_EDGES // max(edges, 1)))
            for start in range(0, nodes.numel(), step):  # chunks of queries
                part = nodes[start:start + step]
                out = self.model(scaled_copies(snap, node_type, part, scale)) + self.offset
                rows.append(out.view(part.numel(), -1))
            return torch.cat(rows)
        xs, n, t = self.xs[: self.origin + 1], self.xs.size(1), self.origin
        step = max(1, min(chunk, MAX_BATCH_EDGES // max(self.graph.edge_index.size(1), 1)))
        for start in range(0, nodes.numel(), step):  # chunks of queries
            part = nodes[start:start + step]
            b = part.numel()
            xb = xs.repeat(1, b, 1)
            idx = torch.arange(b) * n + part
            xb[:, idx] = xb[:, idx] * scale
            graph = PeriodGraph(replicate_edges(self.graph.edge_index, n, b), b * n)
            out = self.model(xb, [graph] * (t + 1))[t].squeeze(-1) + self.offset
            rows.append(out.view(b, n))
        return torch.cat(rows)


def scaled_copies(snap: HeteroData, node_type: str, nodes: Tensor, scale: float) -> HeteroData:
    """A disjoint union of len(nodes) copies of `snap`, copy b with the input row of nodes[b] multiplied by `scale`."""
    b = nodes.numel()
    out = HeteroData()
    sizes = {t: snap[t].x.size(0) for t in snap.node_types}
    for t in snap.node_types:
        x = snap[t].x.repeat(b, 1)
        if t == node_type:
            idx = torch.arange(b) * sizes[t] + nodes
            x[idx] = x[idx] * scale
        out[t].x = x
    for rel in snap.edge_types:
        src, _, dst = rel
        shift = torch.stack([torch.arange(b) * sizes[src], torch.arange(b) * sizes[dst]]).unsqueeze(-1)
        out[rel].edge_index = (snap[rel].edge_index.unsqueeze(1) + shift).reshape(2, -1)
    return out


def fit_forecaster(data: HeteroData, model: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                   origins: list[int], seed: int, target: str, loss_mask: Tensor | None = None) -> FittedForecaster:
    """The run's forecaster for its latest origin, trained on `data` as the run trains it (see the module
    docstring); `loss_mask` (bool [N]): the target nodes whose labels may enter the loss (None: all)."""
    tcfg = train_config(train_cfg)
    t = max(origins)
    end = t if tcfg["refit"] == "origin" else min(origins)
    record = Record(data)
    counts = record.counts(target)
    num = int(data[target].num_nodes)
    val = _val_units(num, float(tcfg["val_share"]), seed).to(counts.device)
    if model in HETERO_MODELS:
        cfg = hetero_config(model, model_cfg)
        snaps = [snapshot(data, record, s, int(cfg["lags"])) for s in range(t + 1)]
        torch.manual_seed(seed * 1000 + end)
        net, offset, _ = _fit(model, cfg, tcfg, snaps[:end], [counts[:, s + 1] for s in range(end)], val, t, target,
                              loss_mask)
        return FittedForecaster(net, offset, target, t, end, counts, snaps=snaps)
    cfg = recurrent_config(model, model_cfg)
    xs = period_inputs(data, record, target)
    graph = PeriodGraph(data[TARGET_GRAPH[target]].edge_index, num)
    torch.manual_seed(seed * 1000 + end)
    net, offset, _ = _fit_recurrent(model, cfg, tcfg, xs, graph, counts, end, val, t, loss_mask)
    return FittedForecaster(net, offset, target, t, end, counts, xs=xs, graph=graph)


def trains_inside(mechanism: Any) -> bool:
    """Whether the mechanism trains its own forecaster (hetero_gap, ...) instead of the run's model on its release:
    `fit_forecaster` would then not be the run's forecaster."""
    from gnnrisk.privacy.city.mechanisms import CityMechanism

    return type(mechanism).forecast is not CityMechanism.forecast


def refuse_trained_inside(mechanism: Any, member: str, who: str, reasons: Mapping[str, str]) -> None:
    """Refuse (one line on `attack`) a mechanism that trains its own forecaster: the attack's retrained model would
    not be the run's; `reasons` holds a mechanism's own explanation, `who` names the attack in the default one."""
    if mechanism is None or not trains_inside(mechanism):
        return
    raise ConfigError("attack", member, reasons.get(mechanism.name) or (
        f"privacy={mechanism.name} trains its forecaster inside the mechanism, which {who} does not re-run yet; "
        "use privacy=none, edgerand or lapgraph"))


def held_out_nodes(data: HeteroData, train_cfg: Mapping[str, Any], seed: int, target: str) -> Tensor:
    """The run's held-out target nodes (early stopping): their labels never enter the loss."""
    return _val_units(int(data[target].num_nodes), float(train_config(train_cfg)["val_share"]), seed)
