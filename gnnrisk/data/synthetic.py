"""The synthetic population: an anonymous social graph whose ground truth is known.

Generation order (all vectorised, seeded from one numpy Generator):
  1. topology and communities (degree-corrected SBM + triadic closure by default),
  2. protected group, segregated across communities by `segregation`,
  3. latent individual risk r and node features (informative, group proxies, noise),
  4. y_true: own-risk seeding followed by `rounds` of contagion along ties; the edges that
     transmitted form `causal_edge_mask`,
  5. y: y_true seen through a group-dependent detection rate, plus optional false reports,
  6. splits, then a random relabelling of node ids so that id order leaks nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import Data

from gnnrisk.data import topology as topo
from gnnrisk.data.splits import attach_splits
from gnnrisk.errors import ConfigError, check_choice, check_number

TOPOLOGIES = ("dcsbm", "holme_kim", "barabasi_albert", "watts_strogatz")


def group_table(cfg: DictConfig, key: str, names: list[str]) -> np.ndarray:
    """Read a {group name: value in [0, 1]} mapping into an array ordered like `names`."""
    field = f"data.{key}"
    table = OmegaConf.select(cfg, key)
    if not isinstance(table, DictConfig):
        raise ConfigError(field, table, "expected a mapping {group name: value}, groups: " + ", ".join(names))
    unknown = [k for k in table.keys() if k not in names]
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}", table[unknown[0]],
                          "unknown group name; the groups are " + ", ".join(names))
    missing = [n for n in names if n not in table]
    if missing:
        raise ConfigError(f"{field}.{missing[0]}", None, "missing value for this group")
    return np.array([check_number(f"{field}.{n}", table[n], low=0.0, high=1.0) for n in names])


def group_offsets(cfg: DictConfig, key: str, names: list[str]) -> np.ndarray:
    """Read a {group name: real number} mapping (e.g. logit offsets) ordered like `names`."""
    table = OmegaConf.select(cfg, key) or {}
    unknown = [k for k in table.keys() if k not in names]
    if unknown:
        raise ConfigError(f"data.{key}.{unknown[0]}", table[unknown[0]],
                          "unknown group name; the groups are " + ", ".join(names))
    return np.array([check_number(f"data.{key}.{n}", table.get(n, 0.0)) for n in names])


def validate(cfg: DictConfig) -> tuple[list[str], np.ndarray]:
    """Check every knob of the synthetic population; return group names and size fractions."""
    check_number("data.num_nodes", cfg.num_nodes, low=10, integer=True)
    check_choice("data.topology", cfg.topology, TOPOLOGIES)
    check_number("data.mean_degree", cfg.mean_degree, low=1.0, high=cfg.num_nodes / 2)
    check_number("data.num_communities", cfg.num_communities, low=1, high=cfg.num_nodes, integer=True)
    check_number("data.mixing", cfg.mixing, low=0.0, high=1.0)
    check_number("data.degree_exponent", cfg.degree_exponent, low=2.0, low_open=True)
    check_number("data.triadic_closure", cfg.triadic_closure, low=0.0, high=1.0, high_open=True)
    check_number("data.rewire_prob", cfg.rewire_prob, low=0.0, high=1.0)
    check_number("data.segregation", cfg.segregation, low=0.0, high=1.0)
    f = cfg.features
    for k in ("informative", "proxy", "noise"):
        check_number(f"data.features.{k}", f[k], low=0, integer=True)
    if f.informative + f.proxy + f.noise == 0:
        raise ConfigError("data.features", OmegaConf.to_container(f), "at least one feature is needed")
    check_number("data.features.informative_noise", f.informative_noise, low=0.0)
    check_number("data.features.proxy_strength", f.proxy_strength, low=0.0)
    o = cfg.outcome
    check_number("data.outcome.base_rate", o.base_rate, low=0.0, high=1.0, low_open=True, high_open=True)
    check_number("data.outcome.transmission", o.transmission, low=0.0, high=1.0)
    check_number("data.outcome.rounds", o.rounds, low=0, integer=True)
    check_number("data.outcome.risk_effect", o.risk_effect)
    check_number("data.outcome.susceptibility_effect", o.susceptibility_effect)
    groups = cfg.groups
    if not isinstance(groups, DictConfig) or len(groups) < 2:
        raise ConfigError("data.groups", groups, "expected a mapping of at least two {group name: size fraction}")
    names = [str(k) for k in groups.keys()]
    sizes = np.array([check_number(f"data.groups.{n}", groups[n], low=0.0, high=1.0, low_open=True)
                      for n in names])
    if abs(sizes.sum() - 1.0) > 1e-6:
        raise ConfigError("data.groups", OmegaConf.to_container(groups), "group size fractions must sum to 1")
    return names, sizes


def make_topology(cfg: DictConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Generate the undirected edges [2, M] (u < v) and a community label per node."""
    n, k = int(cfg.num_nodes), float(cfg.mean_degree)
    num_edges = int(round(n * k / 2))
    closure = int(round(num_edges * cfg.triadic_closure))
    if cfg.topology == "dcsbm":
        num_comm = int(cfg.num_communities)
        share = rng.dirichlet(np.full(num_comm, 2.0))  # uneven community sizes
        community = rng.choice(num_comm, size=n, p=share)
        theta = topo.heavy_tailed_weights(n, cfg.degree_exponent, k, rng)
        edges = topo.dcsbm_edges(community, num_edges - closure, theta, cfg.mixing, rng)
        edges = topo.triadic_closure_edges(edges, n, closure, rng)
    elif cfg.topology in ("barabasi_albert", "holme_kim"):
        # Holme–Kim: preferential attachment plus triad formation; the vectorised variant adds the
        # triad-formation edges after growth (same kind of clustering, not the exact recursion).
        m = max(int(round(k / 2 * (1 - (cfg.triadic_closure if cfg.topology == "holme_kim" else 0)))), 1)
        edges = topo.barabasi_albert_edges(n, m, rng)
        if cfg.topology == "holme_kim":
            edges = topo.triadic_closure_edges(edges, n, max(num_edges - edges.shape[1], 0), rng)
        # Preferential attachment has no planted communities: use arrival-time blocks, which
        # are as arbitrary as any split and keep `segregation` well-defined.
        community = (np.arange(n) * int(cfg.num_communities)) // n
    else:  # watts_strogatz
        edges = topo.watts_strogatz_edges(n, int(round(k)), cfg.rewire_prob, rng)
        community = (np.arange(n) * int(cfg.num_communities)) // n  # contiguous arcs of the ring
    return edges, community


def assign_groups(community: np.ndarray, sizes: np.ndarray, segregation: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Give each community a home group (mass matching `sizes`); members take it with prob `segregation`."""
    num_comm = int(community.max()) + 1
    comm_size = np.bincount(community, minlength=num_comm).astype(float)
    order = rng.permutation(num_comm)
    midpoint = (np.cumsum(comm_size[order]) - comm_size[order] / 2) / comm_size.sum()
    home = np.empty(num_comm, dtype=np.int64)
    home[order] = np.minimum(np.searchsorted(np.cumsum(sizes), midpoint), len(sizes) - 1)
    n = community.shape[0]
    drawn = rng.choice(len(sizes), size=n, p=sizes)
    return np.where(rng.random(n) < segregation, home[community], drawn)


def make_features(risk: np.ndarray, group: np.ndarray, num_groups: int, cfg: DictConfig,
                  rng: np.random.Generator) -> np.ndarray:
    """Informative features (noisy views of risk), proxies of group, and pure noise."""
    n = risk.shape[0]
    f = cfg.features
    loadings = rng.uniform(0.5, 1.5, size=f.informative) * rng.choice([-1.0, 1.0], size=f.informative)
    informative = risk[:, None] * loadings[None, :] + f.informative_noise * rng.standard_normal((n, f.informative))
    centres = rng.standard_normal((num_groups, f.proxy))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True).clip(min=1e-12) / np.sqrt(max(f.proxy, 1))
    proxy = f.proxy_strength * centres[group] + rng.standard_normal((n, f.proxy))
    noise = rng.standard_normal((n, f.noise))
    return np.concatenate([informative, proxy, noise], axis=1).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _calibrated_intercept(effect: np.ndarray, rate: float) -> float:
    """The intercept b with mean(sigmoid(b + effect)) == rate, by bisection (monotone in b)."""
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _sigmoid(mid + effect).mean() < rate else (lo, mid)
    return 0.5 * (lo + hi)


def simulate_outcome(edges: np.ndarray, risk: np.ndarray, group: np.ndarray, cfg: DictConfig,
                     names: list[str], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seed outcomes from own risk, then spread along ties; return y_true and the transmitting edges.

    The returned mask is over the directed edge list [edges, reversed edges]: entry (u -> v) is
    True when u transmitted the outcome to v in the round where v acquired it.
    """
    o = cfg.outcome
    n = risk.shape[0]
    offsets = group_offsets(cfg, "outcome.group_effect", names)
    effect = o.risk_effect * risk + offsets[group]
    p_seed = _sigmoid(_calibrated_intercept(effect, o.base_rate) + effect)
    active = rng.random(n) < p_seed
    src = np.concatenate([edges[0], edges[1]])
    dst = np.concatenate([edges[1], edges[0]])
    susceptibility = _sigmoid(o.susceptibility_effect * risk)  # in (0, 1), 0.5 on average
    p_edge = o.transmission * 2.0 * susceptibility[dst]  # mean transmission about `transmission`
    causal = np.zeros(src.shape[0], dtype=bool)
    for _ in range(int(o.rounds)):  # rounds of the contagion, not nodes or edges
        transmits = active[src] & ~active[dst] & (rng.random(src.shape[0]) < p_edge)
        causal |= transmits
        newly = np.zeros(n, dtype=bool)
        newly[dst[transmits]] = True
        if not newly.any():
            break
        active |= newly
    return active.astype(np.int64), causal


def observe(y_true: np.ndarray, group: np.ndarray, cfg: DictConfig, names: list[str],
            rng: np.random.Generator) -> np.ndarray:
    """The recorded label: true positives detected at a per-group rate, plus per-group false reports."""
    detect = group_table(cfg, "observation.detection_rate", names)
    false_report = group_table(cfg, "observation.false_report_rate", names)
    u = rng.random(y_true.shape[0])
    return np.where(y_true == 1, u < detect[group], u < false_report[group]).astype(np.int64)


def load_synthetic(cfg: DictConfig, seed: int) -> Data:
    """Generate the synthetic population described by `cfg` (the `data` config group) for `seed`."""
    names, sizes = validate(cfg)
    rng = np.random.default_rng(seed)
    n = int(cfg.num_nodes)
    edges, community = make_topology(cfg, rng)
    group = assign_groups(community, sizes, float(cfg.segregation), rng)
    risk = rng.standard_normal(n)
    x = make_features(risk, group, len(names), cfg, rng)
    y_true, causal = simulate_outcome(edges, risk, group, cfg, names, rng)
    y = observe(y_true, group, cfg, names, rng)

    # Relabel nodes at random so that id order reveals neither community nor group.
    perm = rng.permutation(n)  # new id of old node i is perm[i]
    inv = np.argsort(perm)
    directed = np.stack([np.concatenate([edges[0], edges[1]]), np.concatenate([edges[1], edges[0]])])
    directed = perm[directed]
    order = np.argsort(directed[0] * n + directed[1])  # by source, then target: PyG's coalesced order
    data = Data(
        x=torch.from_numpy(x[inv]),
        edge_index=torch.from_numpy(directed[:, order]),
        y=torch.from_numpy(y[inv]),
        y_true=torch.from_numpy(y_true[inv]),
        group=torch.from_numpy(group[inv]),
        community=torch.from_numpy(community[inv].astype(np.int64)),
        causal_edge_mask=torch.from_numpy(causal[order]),
        num_nodes=n,
    )
    data.group_names = names
    data.name = "synthetic"
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    attach_splits(data, cfg.split, gen)
    return data
