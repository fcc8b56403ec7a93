"""The evolving synthetic population: T periods of one anonymous population whose ground truth is known.

Period 0 is the static population of `gnnrisk.data.synthetic` (topology, groups, risk, features,
own-risk seeding and `outcome.rounds` of contagion). Each later period t, all vectorised:
  1. ties: each tie dissolves with probability `dynamics.churn`; as many new ties form, a share
     `dynamics.closure` by closing triangles of the current graph, the rest by the population's
     homophilous draw (degree-corrected SBM over the planted communities);
  2. risk drifts, r_t = rho r_{t-1} + sqrt(1 - rho^2) noise with rho = 1 - `dynamics.feature_drift`;
     features are fresh noisy views of r_t (group proxies persist, with fresh noise);
  3. outcome (contagion with memory, and recovery): a node with the outcome at t-1 recovers with
     probability `dynamics.recovery`; a node without it acquires it from its own risk (per-period
     onset `dynamics.onset_rate`, raised by `dynamics.memory` on the logit scale for those who had it
     before) or from a tie to a node that had it at t-1 (one contagion round per period);
  4. the record y_t: y_true_t seen through the group-dependent detection rates, as in a snapshot.
The ground truth keeps every transmitting (tie, period): `transmissions` = [src, dst, period].

Ties are stored once as intervals (`tie_index` [2, M] with u < v, alive for tie_start <= t < tie_end;
a tie that dissolves and forms again is a new row), so 12 periods cost about 2x one snapshot rather
than 12x; `snapshot(data, t)` materialises the directed edge_index of one period. Node ids are
shuffled as in the snapshot generator, so id order leaks nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.data import synthetic as syn
from gnnrisk.data import topology as topo
from gnnrisk.data.splits import attach_splits
from gnnrisk.errors import ConfigError, check_number


def is_temporal(data: Data) -> bool:
    """True for a dataset of periods (`num_periods` set), False for one snapshot."""
    return getattr(data, "num_periods", None) is not None


def validate(cfg: DictConfig) -> tuple[list[str], np.ndarray]:
    """Check the snapshot knobs and the dynamics; return group names and size fractions."""
    names, sizes = syn.validate(cfg)
    check_number("data.periods", cfg.get("periods"), low=2, integer=True)
    d = cfg.get("dynamics")
    if not isinstance(d, DictConfig):
        raise ConfigError("data.dynamics", d, "expected a mapping with churn, closure, onset_rate, recovery, "
                          "memory, feature_drift")
    for key in ("churn", "closure", "recovery", "feature_drift"):
        check_number(f"data.dynamics.{key}", d.get(key), low=0.0, high=1.0)
    check_number("data.dynamics.onset_rate", d.get("onset_rate"), low=0.0, high=1.0, low_open=True,
                 high_open=True)
    check_number("data.dynamics.memory", d.get("memory"))
    return names, sizes


class FeatureModel:
    """Fixed loadings and group centres: each period's features are fresh noisy views of that period's risk.

    The same formulas as the snapshot generator's `make_features`, with the parameters drawn once so
    that a feature means the same thing in every period.
    """

    def __init__(self, cfg: DictConfig, num_groups: int, rng: np.random.Generator):
        f = cfg.features
        self.f = f
        self.loadings = rng.uniform(0.5, 1.5, size=f.informative) * rng.choice([-1.0, 1.0], size=f.informative)
        centres = rng.standard_normal((num_groups, f.proxy))
        self.centres = centres / (np.linalg.norm(centres, axis=1, keepdims=True).clip(min=1e-12)
                                  / np.sqrt(max(f.proxy, 1)))

    def draw(self, risk: np.ndarray, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Features [N, F] (float32) for one period's risk."""
        n, f = risk.shape[0], self.f
        out = np.empty((n, f.informative + f.proxy + f.noise), dtype=np.float32)
        out[:, :f.informative] = risk[:, None] * self.loadings + f.informative_noise * rng.standard_normal(
            (n, f.informative), dtype=np.float32)
        out[:, f.informative:f.informative + f.proxy] = (f.proxy_strength * self.centres[group]
                                                         + rng.standard_normal((n, f.proxy), dtype=np.float32))
        out[:, f.informative + f.proxy:] = rng.standard_normal((n, f.noise), dtype=np.float32)
        return out


def evolve_ties(keys: np.ndarray, n: int, community: np.ndarray, theta: np.ndarray, cfg: DictConfig,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One period of churn: (mask of the current ties that dissolve, sorted keys of the ties that form).

    `keys` are the sorted linear keys u * n + v (u < v) of the ties alive now. New ties never repeat
    a tie that is alive (dissolving ones included), so a tie has at most one interval per row.
    """
    d = cfg.dynamics
    dissolve = rng.random(keys.size) < float(d.churn)
    count = int(dissolve.sum())
    if count == 0:
        return dissolve, np.empty(0, dtype=np.int64)
    closing = int(round(count * float(d.closure)))
    closure_new = topo.closing_pairs(np.stack([keys // n, keys % n]), n, closing, rng)
    # homophilous draws top up the rest; draws that repeat a tie (alive or just formed) are redrawn
    drawn = np.empty(0, dtype=np.int64)
    for _ in range(20):  # top-up rounds, not edges
        missing = count - closure_new.size - drawn.size
        if missing <= 0:
            break
        e = topo.dcsbm_edges(community, int(missing * 1.2) + 16, theta, float(cfg.mixing), rng)
        fresh = np.setdiff1d(e[0] * n + e[1], np.concatenate([keys, closure_new]), assume_unique=True)
        drawn = np.union1d(drawn, fresh)
    drawn = rng.permutation(drawn)[:max(count - closure_new.size, 0)]
    return dissolve, np.sort(np.concatenate([closure_new, drawn]))


def step_outcome(active: np.ndarray, ever: np.ndarray, keys: np.ndarray, n: int, risk: np.ndarray,
                 onset_base: np.ndarray, cfg: DictConfig, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One period of the outcome: (active now, transmitting sources, their targets) from the state at t-1."""
    o, d = cfg.outcome, cfg.dynamics
    u, v = keys // n, keys % n
    src, dst = np.concatenate([u, v]), np.concatenate([v, u])
    p_edge = o.transmission * 2.0 * syn._sigmoid(o.susceptibility_effect * risk)[dst]
    transmits = active[src] & ~active[dst] & (rng.random(src.size) < p_edge)
    infected = np.zeros(n, dtype=bool)
    infected[dst[transmits]] = True
    onset = rng.random(n) < syn._sigmoid(onset_base + o.risk_effect * risk + float(d.memory) * ever)
    recovers = rng.random(n) < float(d.recovery)
    now = np.where(active, ~recovers, onset | infected)
    return now, src[transmits], dst[transmits]


def load_synthetic_temporal(cfg: DictConfig, seed: int) -> Data:
    """Generate `data.periods` periods of the synthetic population described by `cfg`, for `seed`."""
    names, sizes = validate(cfg)
    rng = np.random.default_rng(seed)
    n, periods = int(cfg.num_nodes), int(cfg.periods)
    edges, community = syn.make_topology(cfg, rng)
    group = syn.assign_groups(community, sizes, float(cfg.segregation), rng)
    risk = rng.standard_normal(n)
    features = FeatureModel(cfg, len(names), rng)
    offsets = syn.group_offsets(cfg, "outcome.group_effect", names)
    onset_base = syn._calibrated_intercept(cfg.outcome.risk_effect * risk + offsets[group],
                                           float(cfg.dynamics.onset_rate)) + offsets[group]
    theta = np.bincount(edges.ravel(), minlength=n).astype(float) + 1.0  # homophilous draws keep degrees

    x = np.empty((n, periods, features.f.informative + features.f.proxy + features.f.noise), dtype=np.float32)
    y_true = np.empty((n, periods), dtype=np.int64)
    y_seen = np.empty((n, periods), dtype=np.int64)
    y0, causal0 = syn.simulate_outcome(edges, risk, group, cfg, names, rng)
    directed0 = np.concatenate([edges, edges[::-1]], axis=1)
    sent = [np.stack([directed0[0, causal0], directed0[1, causal0], np.zeros(int(causal0.sum()), np.int64)])]
    keys = edges[0] * n + edges[1]
    starts = np.zeros(keys.size, dtype=np.int64)
    rows_key, rows_start, rows_end = [], [], []
    active, ever = y0.astype(bool), y0.astype(bool)
    rho = 1.0 - float(cfg.dynamics.feature_drift)
    for t in range(periods):  # periods, not nodes or edges
        if t > 0:
            dissolve, formed = evolve_ties(keys, n, community, theta, cfg, rng)
            rows_key.append(keys[dissolve]), rows_start.append(starts[dissolve])
            rows_end.append(np.full(int(dissolve.sum()), t, dtype=np.int64))
            keep = ~dissolve
            at = np.searchsorted(keys[keep], formed)  # a sorted merge: no re-sort of every tie
            keys, starts = np.insert(keys[keep], at, formed), np.insert(starts[keep], at, t)
            risk = rho * risk + np.sqrt(max(1.0 - rho * rho, 0.0)) * rng.standard_normal(n)
            active, src, dst = step_outcome(active, ever, keys, n, risk, onset_base, cfg, rng)
            ever |= active
            sent.append(np.stack([src, dst, np.full(src.size, t, dtype=np.int64)]))
        x[:, t] = features.draw(risk, group, rng)
        y_true[:, t] = active
        y_seen[:, t] = syn.observe(y_true[:, t], group, cfg, names, rng)
    rows_key.append(keys), rows_start.append(starts), rows_end.append(np.full(keys.size, periods, np.int64))

    perm = rng.permutation(n)  # new id of old node i is perm[i]
    inv = np.argsort(perm)
    all_keys = np.concatenate(rows_key)
    a, b = perm[all_keys // n], perm[all_keys % n]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    tie_start, tie_end = np.concatenate(rows_start), np.concatenate(rows_end)
    order = np.lexsort((hi, lo, tie_start))  # by period of formation, then (u, v)
    transmissions = np.concatenate(sent, axis=1)
    transmissions[:2] = perm[transmissions[:2]]
    data = Data(
        x=torch.from_numpy(x[inv]),
        y=torch.from_numpy(y_seen[inv]),
        y_true=torch.from_numpy(y_true[inv]),
        group=torch.from_numpy(group[inv]),
        community=torch.from_numpy(community[inv].astype(np.int64)),
        tie_index=torch.from_numpy(np.stack([lo[order], hi[order]])),
        tie_start=torch.from_numpy(tie_start[order]),
        tie_end=torch.from_numpy(tie_end[order]),
        transmissions=torch.from_numpy(transmissions),
        num_nodes=n,
    )
    data.num_periods = periods
    data.group_names = names
    data.name = "synthetic_temporal"
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    attach_splits(data, cfg.split, gen)
    return data


def alive(data: Data, period: int) -> Tensor:
    """Mask over `tie_index` of the ties present in `period`."""
    return (data.tie_start <= period) & (data.tie_end > period)


def snapshot(data: Data, period: int) -> Tensor:
    """The directed, coalesced edge_index [2, 2 M_t] of the ties present in `period`."""
    ties = data.tie_index[:, alive(data, period)]
    return directed(ties, int(data.num_nodes))


def directed(ties: Tensor, num_nodes: int) -> Tensor:
    """Both directions of undirected ties [2, M], sorted by (source, target) as PyG coalesces them."""
    both = torch.cat([ties, ties.flip(0)], dim=1)
    order = torch.argsort(both[0] * num_nodes + both[1])
    return both[:, order]


def check_temporal_dataset(data: Data, name: str) -> Data:
    """Raise a DataError naming the problem if a temporal dataset breaks its contract."""
    from gnnrisk.errors import DataError

    t = int(data.num_periods)
    for key in ("x", "y", "tie_index", "tie_start", "tie_end", "train_mask", "val_mask", "test_mask"):
        if getattr(data, key, None) is None:
            raise DataError(f"dataset {name!r} has no field {key!r}")
    if data.x.dim() != 3 or data.x.size(1) != t or tuple(data.y.shape) != (int(data.num_nodes), t):
        raise DataError(f"dataset {name!r}: x must be [nodes, periods, features] and y [nodes, periods]")
    if data.tie_index.numel() == 0:
        raise DataError(f"dataset {name!r} has no ties in any period")
    return data
