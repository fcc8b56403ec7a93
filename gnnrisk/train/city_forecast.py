"""Forecasting on the city, one entry point (`forecast_city`) for both targets: places (hotspots: each
place's incident count next period) and people (person-based risk: each person's involvements next
period), by the analysts' baselines (`gnnrisk.models.hotspot`, `gnnrisk.models.person_risk`), a
heterogeneous GNN with a head on the target type (`gnnrisk.models.hetero`), or a recurrent forecaster
of the temporal module (`gconv_gru`, `gconv_lstm` over the target type's own graph, `lstm` over each
unit's history alone; `gnnrisk.models.recurrent`).

At origin t a forecaster reads what was recorded up to the end of period t, and scores each target
node for period t + 1. Nothing else of the city is read: never an unrecorded incident, a later
incident, a rate, the latent risk, the groups or the patrols.

GNNs are trained with a Poisson loss on the recorded count of period s + 1 from the snapshot at
origin s (training origins s < t, so every target is recorded by t). `train.refit`: "origin" (default)
trains a fresh model per evaluated origin t on s = 0..t-1 (rolling origin, as `gnnrisk.train.forecast`);
"once" trains one model on the origins before the first evaluated origin and applies it to all.
Full batch, Adam; early stopping on held-out targets: a seeded `train.val_share` of the places (the
same at every origin; places or people, as the target) keep their nodes and features but lend no target to the loss, and the weights
of the epoch with the lowest Poisson loss on their targets are kept (`train.patience` epochs without
improvement stop; `val_share: 0` trains `train.epochs` epochs). The log-rate head is offset by the
log mean training target. `CityForecast.history` holds one row per epoch: `origin` (the evaluated
origin the model serves; the first under refit=once), `epoch`, `train_loss` (of the weights entering
the epoch), `val_loss` (the same weights when dropout is 0, else the weights after the epoch's step).

The recurrent forecasters read one input row per unit and period s (`period_inputs`): log1p of the
unit's recorded count in s and, as static inputs, a place's grid position or a person's features; the
graph is the places' adjacency or the people's ties, the same every period. They are trained with the
same Poisson loss, offset, held-out units and early stopping, on the outputs at periods 0..end-1
against the recorded counts one period later, and forecast from their output at the origin (a
recurrence reads no later period; the inputs are cut at the origin all the same).

The snapshot at origin s (`snapshot`): place x = log1p of the recorded counts of periods
s - lags + 1..s (zero before period 0) and of their mean over 0..s, and the grid position scaled to
[0, 1]; person x = the population's features and log1p of the person's recorded involvements (up
to s, and in s); incident nodes = the recorded incidents of periods <= s, x = their age at the end
of s in periods and exp(-age); every relation, with incident edges kept for those incidents only.
"""

from __future__ import annotations

import copy
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, check_choice, check_number, model_settings
from gnnrisk.models.hetero import HETERO_MODELS, hetero_config
from gnnrisk.models.hotspot import BASELINES, baseline_config
from gnnrisk.models.person_risk import PERSON_BASELINES, person_baseline_config
from gnnrisk.models.recurrent import RECURRENT_CLASSES, TEMPORAL_MODELS, PeriodGraph

TARGETS = ("place", "person")
TARGET_MODELS: dict[str, tuple[str, ...]] = {"place": (*BASELINES, *HETERO_MODELS, *TEMPORAL_MODELS),
                                             "person": (*PERSON_BASELINES, *HETERO_MODELS, *TEMPORAL_MODELS)}
MODEL_NAMES = (*BASELINES, *PERSON_BASELINES, *HETERO_MODELS, *TEMPORAL_MODELS)
RECURRENT_DEFAULTS: dict[str, Any] = {"hidden_channels": 32, "num_layers": 1, "dropout": 0.0}
TARGET_GRAPH = {"place": ("place", "adjacent", "place"), "person": ("person", "knows", "person")}
TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 200, "lr": 0.01, "weight_decay": 0.0, "patience": 20, "val_share": 0.2,
                                  "refit": "origin"}
REFITS = ("origin", "once")


@dataclass
class CityForecast:
    """Scores [len(origins), N]: row i scores every `target` node for period origins[i] + 1 from the record up to origins[i]."""

    scores: Tensor
    origins: list[int]
    model: str
    target: str = "place"
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _linked(data: HeteroData, rel: tuple[str, str, str], side: int) -> Tensor:
    """For a relation with one edge per incident: the other end of each incident's edge."""
    ei = data[rel].edge_index
    out = torch.empty(data["incident"].num_nodes, dtype=torch.long, device=ei.device)
    out[ei[side]] = ei[1 - side]
    return out


def check_origins(origins: Any, num_periods: int, first: int = 0) -> list[int]:
    """`origins` as distinct integers in [first, num_periods - 2] (each needs a next period), else a ConfigError."""
    allowed = f"expected distinct integer periods in [{first}, {num_periods - 2}] (data.periods={num_periods}; " \
              f"origin t forecasts period t + 1{', and a GNN needs a training origin before it' if first else ''})"
    if isinstance(origins, (str, bytes)) or not hasattr(origins, "__len__") or len(origins) == 0:
        raise ConfigError("eval.origins", origins, allowed)
    out = []
    for t in origins:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not first <= int(t) <= num_periods - 2:
            raise ConfigError("eval.origins", list(origins), allowed)
        out.append(int(t))
    if len(set(out)) != len(out):
        raise ConfigError("eval.origins", list(origins), allowed)
    return out


def train_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The GNN training settings read here (other keys of the `train` group are ignored), checked."""
    out = {**TRAIN_DEFAULTS, **{k: cfg[k] for k in TRAIN_DEFAULTS if k in cfg}}
    check_number("train.epochs", out["epochs"], low=1, integer=True)
    check_number("train.lr", out["lr"], low=0.0, low_open=True)
    check_number("train.weight_decay", out["weight_decay"], low=0.0)
    check_number("train.patience", out["patience"], low=1, integer=True)
    check_number("train.val_share", out["val_share"], low=0.0, high=1.0, high_open=True)
    check_choice("train.refit", out["refit"], REFITS)
    return out


class Record:
    """What the analysts can read: recorded incidents (place, person, period, time) and counts per period."""

    def __init__(self, data: HeteroData):
        inc = data["incident"]
        kept = inc.recorded.bool()
        self.place = _linked(data, ("incident", "occurred_at", "place"), 0)[kept]
        self.person = _linked(data, ("person", "involved_in", "incident"), 1)[kept]
        self.period, self.time = inc.period[kept], inc.time[kept].double()
        self.index = kept.nonzero().flatten()  # their ids among all incidents
        self.periods, self.days = int(data.num_periods), float(data.period_days)
        p, n = data["place"].num_nodes, data["person"].num_nodes
        k = self.periods
        self.place_counts = torch.bincount(self.place * k + self.period, minlength=p * k).reshape(p, k).float()
        self.person_counts = torch.bincount(self.person * k + self.period, minlength=n * k).reshape(n, k).float()

    def counts(self, target: str) -> Tensor:
        """Recorded counts per target node and period [N, periods]."""
        return self.place_counts if target == "place" else self.person_counts


def snapshot(data: HeteroData, record: Record, origin: int, lags: int) -> HeteroData:
    """The graph a GNN reads at `origin`: record-derived features, recorded incidents of periods <= origin."""
    snap = HeteroData()
    counts = record.place_counts[:, : origin + 1]
    recent = F.pad(counts, (max(lags - counts.size(1), 0), 0))[:, -lags:]
    side = max(int(data.grid_size) - 1, 1)
    snap["place"].x = torch.cat([recent.log1p(), counts.mean(1, keepdim=True).log1p(),
                                 data["place"].pos.float() / side], dim=1)
    inv = record.person_counts[:, : origin + 1]
    snap["person"].x = torch.cat([data["person"].x.float(), inv.sum(1, keepdim=True).log1p(),
                                  inv[:, -1:].log1p()], dim=1)
    seen = record.period <= origin
    age = (((origin + 1) * record.days - record.time[seen]) / record.days).float().unsqueeze(1)
    snap["incident"].x = torch.cat([age, torch.exp(-age)], dim=1)
    m = int(seen.sum())
    new_id = torch.full((data["incident"].num_nodes,), -1, dtype=torch.long, device=seen.device)
    new_id[record.index[seen]] = torch.arange(m, device=seen.device)
    for src, rel, dst in data.edge_types:
        ei = data[src, rel, dst].edge_index
        if "incident" in (src, dst):
            end = 0 if src == "incident" else 1
            ei = ei[:, new_id[ei[end]] >= 0]  # a copy
            ei[end] = new_id[ei[end]]
        snap[src, rel, dst].edge_index = ei
    return snap


def _val_units(num_units: int, share: float, seed: int) -> Tensor:
    """A seeded random mask of the target nodes (places or people) whose targets are held out for early stopping."""
    count = min(round(share * num_units), num_units - 1) if share > 0 else 0
    mask = torch.zeros(num_units, dtype=torch.bool)
    mask[torch.randperm(num_units, generator=torch.Generator().manual_seed(seed))[:count]] = True
    return mask


def _fit(name: str, cfg: dict[str, Any], tcfg: dict[str, Any], snaps: list[HeteroData], targets: list[Tensor],
         val: Tensor, label: int, target: str = "place", loss_mask: Tensor | None = None
         ) -> tuple[nn.Module, Tensor, list[dict[str, float]]]:
    """Train a fresh model on (snapshot, next recorded count) pairs; keep the best validation weights.
    `loss_mask`: the target nodes whose labels may enter the loss besides `val` (None: all; membership attacks)."""
    model = HETERO_MODELS[name](snaps[0].metadata(), cfg, target).to(val.device)
    with torch.no_grad():
        model(snaps[0])  # materialises the lazy input layers
    train = ~val if loss_mask is None else ~val & loss_mask
    offset = torch.log(torch.stack(targets)[:, train].mean().clamp(min=1e-3))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    # Without dropout the training forward is the evaluation forward: it scores the weights before each step.
    reuse = float(cfg["dropout"]) == 0
    validate = bool(val.any())
    best, best_state, waited, history = float("inf"), None, 0, []
    for epoch in range(1, int(tcfg["epochs"]) + 1):
        model.train()
        optimizer.zero_grad()
        train_loss = val_loss = 0.0
        for snap, y in zip(snaps, targets):  # one snapshot per training origin (period)
            loss = F.poisson_nll_loss(model(snap) + offset, y, log_input=True, reduction="none")
            part = loss[train].mean() / len(snaps)
            part.backward()
            train_loss += float(part.detach())
            if validate and reuse:
                val_loss += float(loss[val].mean().detach()) / len(snaps)
        if validate and reuse:
            best, best_state, waited = _keep(model, val_loss, best, best_state, waited)
        optimizer.step()
        if validate and not reuse:
            model.eval()
            with torch.no_grad():
                val_loss = sum(float(F.poisson_nll_loss(model(sn) + offset, y, log_input=True, reduction="none")[val]
                                     .mean()) for sn, y in zip(snaps, targets)) / len(snaps)
            best, best_state, waited = _keep(model, val_loss, best, best_state, waited)
        history.append({"origin": label, "epoch": epoch, "train_loss": train_loss,
                        **({"val_loss": val_loss} if validate else {})})
        if validate and waited >= int(tcfg["patience"]):
            break
    return _best(model, best_state), offset, history


def _best(model: nn.Module, state: dict | None) -> nn.Module:
    """The model with its best validation weights (if any were kept), in evaluation mode."""
    if state is not None:
        model.load_state_dict(state)
    return model.eval()


def _keep(model: nn.Module, score: float, best: float, state: dict | None, waited: int) -> tuple[float, dict | None, int]:
    """Early-stopping bookkeeping: the best score, its weights, epochs since it improved."""
    if score < best:
        return score, copy.deepcopy(model.state_dict()), 0
    return best, state, waited + 1


def _gnn_forecast(data: HeteroData, name: str, cfg: dict[str, Any], tcfg: dict[str, Any], origins: list[int],
                  seed: int, target: str = "place") -> tuple[Tensor, list[dict[str, float]]]:
    """Scores of a heterogeneous GNN at each origin, trained per `train.refit`."""
    record = Record(data)
    lags = int(cfg["lags"])
    snaps = {s: snapshot(data, record, s, lags) for s in range(max(origins))}
    snaps.update({t: snapshot(data, record, t, lags) for t in origins})
    counts = record.counts(target)
    val = _val_units(data[target].num_nodes, float(tcfg["val_share"]), seed).to(counts.device)
    rows, history = [], []
    fitted: tuple[nn.Module, Tensor] | None = None
    for t in origins:  # a handful of origins
        if fitted is None or tcfg["refit"] == "origin":
            end = t if tcfg["refit"] == "origin" else min(origins)
            torch.manual_seed(seed * 1000 + end)
            model, offset, curve = _fit(name, cfg, tcfg, [snaps[s] for s in range(end)],
                                        [counts[:, s + 1] for s in range(end)], val, t, target)
            fitted = (model, offset)
            history += curve
        model, offset = fitted
        with torch.no_grad():
            rows.append(torch.exp(model(snaps[t]) + offset))
    return torch.stack(rows), history


def period_inputs(data: HeteroData, record: Record, target: str) -> Tensor:
    """Inputs [periods, N, F] of the recurrent forecasters: log1p recorded count per period, and static inputs."""
    counts = record.counts(target).T.log1p().unsqueeze(-1)  # [K, N, 1]
    if target == "place":
        static = data["place"].pos.float() / max(int(data.grid_size) - 1, 1)
    else:
        static = data["person"].x.float()
    return torch.cat([counts, static.unsqueeze(0).expand(counts.size(0), -1, -1)], dim=-1)


def recurrent_config(name: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The recurrent model's settings on the city: defaults overlaid with `cfg`, checked."""
    out = model_settings(name, RECURRENT_DEFAULTS, cfg)
    check_number("model.hidden_channels", out["hidden_channels"], low=1, integer=True)
    check_number("model.num_layers", out["num_layers"], low=1, integer=True)
    check_number("model.dropout", out["dropout"], low=0.0, high=1.0, high_open=True)
    return out


def _fit_recurrent(name: str, cfg: dict[str, Any], tcfg: dict[str, Any], xs: Tensor, graph: PeriodGraph,
                   counts: Tensor, end: int, val: Tensor, label: int, loss_mask: Tensor | None = None
                   ) -> tuple[nn.Module, Tensor, list[dict]]:
    """Train a fresh recurrent model on periods 0..end-1 -> their next recorded counts; keep the best weights.
    `loss_mask`: as `_fit`'s."""
    model = RECURRENT_CLASSES[name](in_channels=xs.size(-1), out_channels=1, **cfg)
    graphs = [graph] * end
    targets = counts[:, 1: end + 1].T  # [end, N]: period s's target is the count of s + 1
    train = ~val if loss_mask is None else ~val & loss_mask
    offset = torch.log(targets[:, train].mean().clamp(min=1e-3))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    validate = bool(val.any())
    best, best_state, waited, history = float("inf"), None, 0, []
    for epoch in range(1, int(tcfg["epochs"]) + 1):
        model.train()
        optimizer.zero_grad()
        loss = F.poisson_nll_loss(model(xs[:end], graphs).squeeze(-1) + offset, targets, log_input=True,
                                  reduction="none")
        part = loss[:, train].mean()
        part.backward()
        optimizer.step()
        row = {"origin": label, "epoch": epoch, "train_loss": float(part.detach())}
        if validate:
            model.eval()
            with torch.no_grad():
                out = model(xs[:end], graphs).squeeze(-1) + offset
                row["val_loss"] = float(F.poisson_nll_loss(out, targets, log_input=True, reduction="none")[:, val]
                                        .mean())
            best, best_state, waited = _keep(model, row["val_loss"], best, best_state, waited)
        history.append(row)
        if validate and waited >= int(tcfg["patience"]):
            break
    return _best(model, best_state), offset, history


def _recurrent_forecast(data: HeteroData, name: str, cfg: dict[str, Any], tcfg: dict[str, Any], origins: list[int],
                        seed: int, target: str) -> tuple[Tensor, list[dict[str, float]]]:
    """Scores of a recurrent forecaster at each origin, trained per `train.refit`."""
    record = Record(data)
    xs, counts = period_inputs(data, record, target), record.counts(target)
    graph = PeriodGraph(data[TARGET_GRAPH[target]].edge_index, data[target].num_nodes)
    val = _val_units(data[target].num_nodes, float(tcfg["val_share"]), seed)
    rows, history, fitted = [], [], None
    for t in origins:  # a handful of origins
        if fitted is None or tcfg["refit"] == "origin":
            end = t if tcfg["refit"] == "origin" else min(origins)
            torch.manual_seed(seed * 1000 + end)
            fitted = _fit_recurrent(name, cfg, tcfg, xs, graph, counts, end, val, t)
            history += fitted[2]
        model, offset, _ = fitted
        with torch.no_grad():
            rows.append(torch.exp(model(xs[: t + 1], [graph] * (t + 1))[t].squeeze(-1) + offset))
    return torch.stack(rows), history


def _baseline_forecast(data: HeteroData, name: str, cfg: dict[str, Any], origins: list[int]) -> Tensor:
    """Scores of an analysts' baseline at each origin, from the recorded incidents' cells and times."""
    record = Record(data)
    side, days = int(data.grid_size), float(data.period_days)
    pos = data["place"].pos.long().cpu()
    cell_of_place = (pos[:, 0] * side + pos[:, 1]).numpy()
    cell = cell_of_place[record.place.cpu().numpy()]
    times, periods = record.time.cpu().numpy(), record.period.cpu().numpy()
    rows = []
    for t in origins:  # origins; each forecast vectorised over places and incidents
        seen = periods <= t
        by_cell = BASELINES[name](cell[seen], times[seen], side, (t + 1) * days, days, **cfg)
        rows.append(torch.from_numpy(by_cell[cell_of_place]).float())
    return torch.stack(rows)


def _person_baseline_forecast(data: HeteroData, name: str, cfg: dict[str, Any], origins: list[int]) -> Tensor:
    """Scores of a person-based baseline at each origin, from the recorded involvements and the ties."""
    record = Record(data)
    days, people = float(data.period_days), data["person"].num_nodes
    person, times = record.person.cpu().numpy(), record.time.cpu().numpy()
    ties = data["person", "knows", "person"].edge_index.cpu().numpy()
    rows = [torch.from_numpy(PERSON_BASELINES[name](person, times, people, ties, (t + 1) * days, days, **cfg))
            for t in origins]  # origins; each vectorised over people and incidents
    return torch.stack(rows).float()


def check_target(model: str, target: str) -> str:
    """`target` as one of TARGETS, and a model that forecasts it; else a ConfigError."""
    check_choice("eval.target", target, TARGETS)
    if model in TARGET_MODELS["place"] and model not in TARGET_MODELS[target]:
        raise ConfigError("model.name", model, f"a place forecaster cannot score people (eval.target={target}); "
                          "for people: " + ", ".join(TARGET_MODELS[target]))
    if model in TARGET_MODELS["person"] and model not in TARGET_MODELS[target]:
        raise ConfigError("model.name", model, f"a person-based baseline cannot score places (eval.target={target}); "
                          "for places: " + ", ".join(TARGET_MODELS[target]))
    return target


def forecast_city(data: HeteroData, model: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                  origins: list[int], seed: int, target: str = "place") -> CityForecast:
    """Forecast each `target` node's count of period t + 1 from the record up to t, for every t in `origins`."""
    check_choice("model.name", model, MODEL_NAMES)
    check_target(model, target)
    if model_cfg.get("name", model) != model:
        raise ConfigError("model.name", model_cfg.get("name"), f"the model config names another model than {model}")
    gnn = model in HETERO_MODELS
    origins = check_origins(origins, int(data.num_periods), first=1 if gnn or model in TEMPORAL_MODELS else 0)
    start = _time.perf_counter()
    if model in TEMPORAL_MODELS:
        scores, history = _recurrent_forecast(data, model, recurrent_config(model, model_cfg), train_config(train_cfg),
                                              origins, seed, target)
    elif gnn:
        scores, history = _gnn_forecast(data, model, hetero_config(model, model_cfg), train_config(train_cfg),
                                        origins, seed, target)
    elif model in PERSON_BASELINES:
        scores, history = _person_baseline_forecast(data, model, person_baseline_config(model, model_cfg),
                                                    origins), []
    else:
        scores, history = _baseline_forecast(data, model, baseline_config(model, model_cfg), origins), []
    return CityForecast(scores=scores.detach().cpu(), origins=origins, model=model, target=target,
                        history=history, seconds=_time.perf_counter() - start)
