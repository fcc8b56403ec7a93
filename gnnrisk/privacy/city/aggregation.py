"""Aggregation perturbation per relation on the city (`hetero_gap`): GAP (Sajadmanesh et al., USENIX
Security 2023) carried to typed relations, under a city privacy unit (`gnnrisk.privacy.city.units`).

Per snapshot origin s = 0..max(origins) (`city_forecast.snapshot` on the record the mechanism reads):
1. hop 0: each node's snapshot features, zero-padded to one common width and row-normalised (no trained
   encoder). Under the person and incident units the record-derived columns (a place's recorded counts,
   a person's involvement counts) are the unit's data and are dropped: a place keeps its grid position, a
   person its features, an incident its age. Under edge units the snapshot is kept as it is.
2. person unit only, once on the whole city before any snapshot (seeded): each person keeps at most
   max_degree.knows random knows out-edges (knows becomes directed), max_degree.frequents frequented
   places, one home, and max_degree.involved_in of their recorded incidents; the others are dropped from
   everything the mechanism reads (node, edges and record, so also from the labels).
3. hops k = 1..K, every relation r = (src, rel, dst): z^k_r[i] = sum_{j -> i in r} h^{k-1}_j + N(0, sigma^2 I)
   on every dst row (plain sums of unit-norm rows); h^k_i = normalise(sum_{r into i's type} normalise(z^k_r[i])).
4. the head, an MLP on [h^0_i, normalise(z^k_r[i]) for k = 1..K, r into the target type], forecasts
   exp(log-rate) of the target node's recorded count in s + 1. Edge units: labels public, trained as
   `city_forecast` trains (full batch Adam, Poisson loss offset by the log mean training target, held-out
   early stopping). Incident and person units: DP-SGD on the Poisson loss split per (target node, origin)
   pair p as c_p (lambda_p - y_p f_p): the exposure terms c_p lambda_p grad f_p read no label and are added
   exactly; each recorded incident is an example with gradient c_p grad f_p (norm <= C, c_p = min(1, C /
   |grad f_p|)), Poisson-sampled at rate q, plus N(0, (z m C)^2); offset 0 (a learned bias takes its place:
   the mean target is private); fixed epochs, last weights.

The released forecast reads only rows of the target type, whose nodes exist in both neighbouring cities
(places always; people under edge and incident units); rows of the unit's own nodes (a removed person or
incident) are internal and reach others only through their unit-norm messages. Hence person-level
forecasts of people are refused under the person unit. Accounting: `aggregation_accounting`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.utils import coalesce

from gnnrisk.errors import ConfigError, DataError, Refusals, check_choice, check_number
from gnnrisk.privacy.city import aggregation_accounting as aa
from gnnrisk.privacy.city.aggregation_accounting import hetero_gap_dp_event
from gnnrisk.privacy.city.units import Unit
from gnnrisk.privacy.gap_dpsgd import poisson_schedule
from gnnrisk.privacy.gap_model import bound_out_degree, sum_aggregate
from gnnrisk.train.city_forecast import (
    TARGETS,
    CityForecast,
    Record,
    _keep,
    _val_units,
    check_origins,
    snapshot,
    train_config,
)

NAME = "hetero_gap"
HETERO_GAP_DEFAULTS: dict[str, Any] = {
    "hops": 2,  # K aggregation hops per snapshot
    "max_degree": {"knows": 10, "frequents": 3, "involved_in": 2},  # person unit only: caps per person
    "lags": 3,  # recent periods in the snapshot's place features (edge units; dropped otherwise)
    "head_hidden": 32,
    "head_layers": 2,  # 1 = linear
    "max_grad_norm": 1.0,  # C (DP-SGD head: incident and person units)
    "batch_size": 64,  # expected (target node, origin) pairs per DP-SGD step: q = batch_size / pairs
    "epochs": 50,  # DP-SGD epochs per head fit (edge units train with the train group instead)
    "lr": 0.01,  # Adam learning rate of the DP-SGD head
}
PASSED_APART = ("name", "unit", "epsilon", "delta")  # read by the wiring and passed as arguments
CAPS = tuple(HETERO_GAP_DEFAULTS["max_degree"])


def hetero_gap_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """HETERO_GAP_DEFAULTS overlaid with the privacy group `cfg` (name, unit, epsilon and delta are passed apart
    and ignored here), checked: a ConfigError naming privacy.<key> per bad value, all of them at once."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in dict(cfg or {}).items() if k not in PASSED_APART}
    refusals = Refusals()
    for key in cfg:
        if key not in HETERO_GAP_DEFAULTS:
            with refusals.check():
                raise ConfigError(f"privacy.{key}", cfg[key], f"privacy={NAME} has no such setting; its keys are "
                                  + ", ".join([*PASSED_APART, *HETERO_GAP_DEFAULTS]))
    out = {**HETERO_GAP_DEFAULTS, **{k: v for k, v in cfg.items() if k in HETERO_GAP_DEFAULTS}}
    out["max_degree"] = check_caps(out["max_degree"], refusals)
    for key in ("hops", "lags", "head_hidden", "head_layers", "batch_size", "epochs"):
        with refusals.check():
            out[key] = check_number(f"privacy.{key}", out[key], low=1, integer=True)
    for key in ("max_grad_norm", "lr"):
        with refusals.check():
            out[key] = check_number(f"privacy.{key}", out[key], low=0.0, low_open=True)
    refusals.raise_any()
    return out


def check_caps(given: Any, refusals: Refusals) -> dict[str, int]:
    """`privacy.max_degree` (a partial mapping overlays the default caps) checked: each bad cap kept in `refusals`."""
    caps = dict(HETERO_GAP_DEFAULTS["max_degree"])
    if not isinstance(given, Mapping):
        with refusals.check():
            raise ConfigError("privacy.max_degree", given, "expected a mapping of per-person caps: "
                              + ", ".join(f"{k}: <integer >= 1>" for k in CAPS))
        return caps
    for key, value in given.items():
        with refusals.check():
            if key not in caps:
                raise ConfigError(f"privacy.max_degree.{key}", value, "no such cap; the caps are " + ", ".join(CAPS)
                                  + " (lives_at is one home per person)")
            caps[key] = check_number(f"privacy.max_degree.{key}", value, low=1, integer=True)
    return caps


def check_target(unit: Unit, target: str) -> str:
    """`target` as one the unit can release: people are not forecast under the person unit."""
    check_choice("eval.target", target, TARGETS)
    if unit.kind == "person" and target == "person":
        raise ConfigError("eval.target", target, f"privacy={NAME} with privacy.unit=person forecasts places only: "
                          "a forecast row per person reveals who is in the city (and reads their own features)")
    return target


def capped_city(data: HeteroData, unit: Unit, caps: dict[str, int], seed: int) -> HeteroData:
    """The city the mechanism reads: under the person unit each person's knows out-edges, frequented places, home
    and recorded incidents capped by seeded random choice (dropped incidents unrecorded: gone from the record);
    the city itself otherwise."""
    if unit.kind != "person":
        return data
    out = copy.copy(data)  # shallow: the edited stores are replaced, never written into
    people = int(data["person"].num_nodes)
    generator = torch.Generator().manual_seed(seed * 7919 + 104729)
    for rel, cap in (("knows", caps["knows"]), ("lives_at", 1), ("frequents", caps["frequents"])):
        dst = "person" if rel == "knows" else "place"
        edges = coalesce(data["person", rel, dst].edge_index)  # one message per distinct destination
        kept = coalesce(bound_out_degree(edges, people, cap, generator))
        out["person", rel, dst].edge_index = kept
        if dst != "person":
            out[dst, f"rev_{rel}", "person"].edge_index = coalesce(kept.flip(0))
    links = data["person", "involved_in", "incident"].edge_index
    recorded = data["incident"].recorded.bool()
    kept = bound_out_degree(links[:, recorded[links[1]]], people, caps["involved_in"], generator)
    capped = torch.zeros_like(recorded)
    capped[kept[1]] = True
    out["incident"].recorded = capped
    return out


def check_incident_links(data: HeteroData, mechanism: str = NAME) -> None:
    """Each incident has one place and one person: the incident unit's sensitivity counts on it."""
    for rel, side in ((("incident", "occurred_at", "place"), 0), (("person", "involved_in", "incident"), 1)):
        ends = data[rel].edge_index[side]
        if ends.numel() and int(torch.bincount(ends).max()) > 1:
            raise DataError(f"{mechanism}: an incident has several {rel[1]} links; the incident unit's sensitivity "
                            "assumes one place and one person per incident")



def snapshot_inputs(data: HeteroData, record: Record, origin: int, lags: int, unit: Unit) -> HeteroData:
    """The snapshot at `origin` with hop 0 as x: features (record-derived columns dropped under the person and
    incident units), zero-padded to one width and row-normalised."""
    snap = snapshot(data, record, origin, lags)
    if unit.kind != "edge":
        snap["place"].x = snap["place"].x[:, -2:]  # grid position only
        snap["person"].x = snap["person"].x[:, :-2]  # the population's features only
    width = max(snap[t].x.size(1) for t in snap.node_types)
    for t in snap.node_types:
        snap[t].x = F.normalize(F.pad(snap[t].x.float(), (0, width - snap[t].x.size(1))), dim=1)
    return snap


def relations_into(snap: HeteroData, node_type: str) -> list[tuple[str, str, str]]:
    """The relations whose destination is `node_type`, in a fixed order."""
    return sorted(r for r in snap.edge_types if r[2] == node_type)


def hop_release(snap: HeteroData, h: dict[str, Tensor], noise_std: float,
                generator: torch.Generator | None = None) -> dict[tuple[str, str, str], Tensor]:
    """One hop's release: z_r = sum over r's edges j -> i of h[src]_j, plus N(0, noise_std^2) on every dst row."""
    out = {}
    for rel in sorted(snap.edge_types):
        src, _, dst = rel
        z = sum_aggregate(h[src], snap[rel].edge_index, snap[dst].num_nodes) if h[src].numel() else \
            h[src].new_zeros(snap[dst].num_nodes, h[src].size(1))
        if noise_std > 0:
            z = z + noise_std * torch.randn(z.shape, generator=generator)
        out[rel] = z
    return out


def combine(snap: HeteroData, z: dict[tuple[str, str, str], Tensor]) -> dict[str, Tensor]:
    """h_i = normalise(sum over relations r into i's type of normalise(z_r[i])): post-processing of the release."""
    return {t: F.normalize(sum(F.normalize(z[r], dim=1) for r in relations_into(snap, t)), dim=1)
            for t in snap.node_types}


def head_inputs(snap: HeteroData, hops: int, noise_std: float, target: str,
                generator: torch.Generator | None = None) -> Tensor:
    """[h^0_i, normalise(z^k_r[i]) for k = 1..K, r into the target type] for every target node."""
    h = {t: snap[t].x for t in snap.node_types}
    parts = [h[target]]
    for _ in range(hops):
        z = hop_release(snap, h, noise_std, generator)
        parts += [F.normalize(z[r], dim=1) for r in relations_into(snap, target)]
        h = combine(snap, z)
    return torch.cat(parts, dim=1)


def head_mlp(in_channels: int, hidden: int, layers: int) -> nn.Sequential:
    """The head: Linear layers with SELU between them, one log-rate output."""
    sizes = [in_channels] + [hidden] * (layers - 1) + [1]
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < layers - 1:
            mods.append(nn.SELU())
    return nn.Sequential(*mods)


def _fit_public(model: nn.Module, x: Tensor, y: Tensor, val: Tensor, tcfg: dict[str, Any],
                label: int) -> tuple[nn.Module, Tensor, list[dict[str, float]]]:
    """Public labels (edge units): city_forecast's training (full batch Adam, offset, held-out early stopping)."""
    train = ~val
    offset = torch.log(y[:, train].mean().clamp(min=1e-3))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    validate = bool(val.any())
    best, state, waited, history = float("inf"), None, 0, []
    for epoch in range(1, int(tcfg["epochs"]) + 1):
        optimizer.zero_grad()
        loss = F.poisson_nll_loss(model(x).squeeze(-1) + offset, y, log_input=True, reduction="none")
        part = loss[:, train].mean()
        part.backward()
        row = {"origin": label, "epoch": epoch, "train_loss": float(part.detach())}
        if validate:
            row["val_loss"] = float(loss[:, val].mean().detach())
            best, state, waited = _keep(model, row["val_loss"], best, state, waited)
        optimizer.step()
        history.append(row)
        if validate and waited >= int(tcfg["patience"]):
            break
    if state is not None:
        model.load_state_dict(state)
    return model.eval(), offset, history


def per_example_parts(model: nn.Sequential, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Each Linear layer's inputs a_b and outputs (their gradients d f_b / d out_b after one backward of sum f).

    A Linear layer's per-example gradient of the scalar f_b is g_b a_b^T (weight) and g_b (bias), so
    |grad f_b|^2 = sum over layers of |g_b|^2 (|a_b|^2 + 1): norms without per-example gradients."""
    acts, outs, h = [], [], x
    for mod in model:
        if isinstance(mod, nn.Linear):
            acts.append(h.detach())
            h = mod(h)
            h.retain_grad()
            outs.append(h)
        else:
            h = mod(h)
    if h.numel():
        h.sum().backward(inputs=outs)
    return acts, outs


def outs_grads(outs: list[Tensor]) -> list[Tensor]:
    """The gradients recorded by `per_example_parts` (zeros for an empty batch)."""
    return [o.grad if o.grad is not None else torch.zeros_like(o) for o in outs]


def _fit_private(model: nn.Module, x: Tensor, incidents: Tensor, settings: dict[str, Any], noise_std: float,
                 seed: int, label: int) -> tuple[nn.Module, Tensor, list[dict[str, float]]]:
    """DP-SGD on the Poisson loss split into public exposure terms and one example per recorded incident.

    x: [pairs, F] inputs of the (origin, target node) pairs; incidents: the pair of each recorded incident
    (period s + 1 at its target node). Per step, pairs and incidents are Poisson-sampled at rate q; with
    c_p = min(1, C / |grad f_p|) the step's gradient is (sum_pairs c_p lambda_p grad f_p - sum_incidents
    c_p grad f_p + N(0, noise_std^2 I)) / (q pairs). Fixed epochs, last weights kept; no loss is logged
    (it reads private labels).
    """
    n = x.size(0)
    q, per_epoch = poisson_schedule(n, int(settings["batch_size"]))
    clip = float(settings["max_grad_norm"])
    offset = torch.zeros(())
    optimizer = torch.optim.Adam(model.parameters(), lr=float(settings["lr"]))
    generator = torch.Generator().manual_seed(seed)
    linears = [mod for mod in model if isinstance(mod, nn.Linear)]
    history = []
    for epoch in range(1, int(settings["epochs"]) + 1):
        for _ in range(per_epoch):
            pairs = torch.rand(n, generator=generator) < q
            drawn = incidents[torch.rand(incidents.numel(), generator=generator) < q]
            inc_count = torch.bincount(drawn, minlength=n).float()
            rows = (pairs | (inc_count > 0)).nonzero().flatten()
            acts, outs = per_example_parts(model, x[rows])
            grads = outs_grads(outs)
            with torch.no_grad():
                lam = torch.exp(outs[-1].squeeze(-1) + offset)
                norms = torch.sqrt(sum(g.pow(2).sum(1) * (a.pow(2).sum(1) + 1.0) for a, g in zip(acts, grads)))
                c = (clip / norms.clamp(min=1e-12)).clamp(max=1.0)
                weight = c * (lam * pairs[rows].float() - inc_count[rows])
                optimizer.zero_grad(set_to_none=True)
                for lin, a, g in zip(linears, acts, grads):  # sum_b weight_b grad f_b, layer by layer
                    wg = weight.unsqueeze(1) * g
                    parts = {"weight": wg.T @ a, "bias": wg.sum(0)}
                    for name, p in lin.named_parameters():
                        total = parts[name]
                        if noise_std > 0:
                            total = total + noise_std * torch.randn(p.shape, generator=generator)
                        p.grad = total / (q * n)
            optimizer.step()
        history.append({"origin": label, "epoch": epoch})
    return model.eval(), offset, history


def _stream_seed(seed: int, stream: int) -> int:
    """The seed of noise stream `stream` of a run: `seed` itself for the run's forecast (stream 0), a
    SeedSequence draw for each further forecast of the run (the patrol loop's), so no noise is reused."""
    return seed if stream == 0 else int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def forecast_hetero_gap(data: HeteroData, unit: Unit, epsilon: float, delta: float | None, settings: dict[str, Any],
                        train_cfg: Mapping[str, Any], origins: list[int], seed: int, target: str,
                        also: Sequence[list[int]] = (), accounted: Mapping[str, Any] | None = None,
                        stream: int = 0) -> tuple[CityForecast, dict[str, Any]]:
    """Forecast each target node's count of period t + 1 for t in origins under `unit`-level DP; return the
    forecast and the privacy dict (epsilon None when epsilon is inf: no noise).

    `also`: the origins of the run's further forecasts (the patrol loop's refits), calibrated together with this
    one, so that the returned epsilon covers all of them. `accounted`: the privacy dict of such a run, whose noise
    this forecast (one of its `also`, drawn from noise stream `stream` >= 1) uses without calibrating again.
    """
    start = time.perf_counter()
    check_target(unit, target)
    epsilon = check_number("privacy.epsilon", epsilon, low=0.0, low_open=True)
    if delta is not None:
        check_number("privacy.delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    tcfg = train_config(train_cfg)
    origins = check_origins(origins, int(data.num_periods), first=1)
    hops = int(settings["hops"])
    if unit.kind == "incident":
        check_incident_links(data)
    num_targets = int(data[target].num_nodes)
    if accounted is None:
        privacy = aa.run_privacy(data, unit, epsilon, delta, settings, [list(origins), *map(list, also)],
                                 tcfg["refit"], num_targets)
    else:
        privacy = dict(accounted)
    snapshots = max(origins) + 1
    m = privacy["head_group"]
    noise_std = privacy["aggregation_noise_std"]
    head_std = privacy["head_noise_std"] or 0.0

    city = capped_city(data, unit, settings["max_degree"], seed)  # the run's caps, whatever the stream
    record = Record(city)
    noise_seed = _stream_seed(seed, stream)
    generator = torch.Generator().manual_seed(noise_seed + 1)
    inputs = torch.stack([head_inputs(snapshot_inputs(city, record, s, int(settings["lags"]), unit), hops,
                                      noise_std, target, generator) for s in range(snapshots)])  # [T, N, F]
    counts = record.counts(target)  # the capped record: the labels the head may read
    val = torch.zeros(num_targets, dtype=torch.bool) if m else _val_units(num_targets, float(tcfg["val_share"]), seed)
    unit_of = record.person if target == "person" else record.place
    rows, history, fitted = [], [], None
    for t in origins:
        if fitted is None or tcfg["refit"] == "origin":
            end = t if tcfg["refit"] == "origin" else min(origins)
            torch.manual_seed(noise_seed * 1000 + end)
            model = head_mlp(inputs.size(-1), int(settings["head_hidden"]), int(settings["head_layers"]))
            if m:
                used = (record.period >= 1) & (record.period <= end)  # labels of periods s + 1, s < end
                pairs = (record.period[used] - 1) * num_targets + unit_of[used]
                fitted = _fit_private(model, inputs[:end].reshape(-1, inputs.size(-1)), pairs, settings, head_std,
                                      noise_seed * 1000 + end + 3, t)
            else:
                fitted = _fit_public(model, inputs[:end], counts[:, 1: end + 1].T, val, tcfg, t)
            history += fitted[2]
        model, offset, _ = fitted
        with torch.no_grad():
            rows.append(torch.exp(model(inputs[t]).squeeze(-1) + offset))
    forecast = CityForecast(scores=torch.stack(rows).detach(), origins=origins, model=NAME, target=target,
                            history=history, seconds=time.perf_counter() - start)
    return forecast, privacy


__all__ = ["HETERO_GAP_DEFAULTS", "capped_city", "check_caps", "check_incident_links", "check_target", "combine",
           "forecast_hetero_gap", "head_inputs", "hetero_gap_dp_event", "hetero_gap_settings", "hop_release",
           "snapshot_inputs"]
