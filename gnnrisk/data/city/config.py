"""The city's knobs: defaults, merging a user's (partial) config over them, and one-line validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from gnnrisk.data.synthetic import TOPOLOGIES
from gnnrisk.errors import ConfigError, check_choice, check_number

DEFAULTS: dict[str, Any] = {
    "name": "city",
    "num_people": 5000,
    "people_per_place": 50,  # sets the grid: side = round(sqrt(num_people / people_per_place)), at least 2
    "periods": 12,
    "period_days": 30.0,
    "groups": {"majority": 0.7, "minority": 0.3},  # protected attribute: {name: size fraction}
    "segregation": 0.6,  # residential: share of people whose home lies in their own group's part of the city
    "frequents": 3,  # places each person frequents besides home (duplicates merged)
    "travel_sd": 2.0,  # sd, in grid cells, of a frequented place's offset from home
    "people": {  # the social graph, generated as in gnnrisk.data.synthetic
        "topology": "dcsbm", "mean_degree": 10, "num_communities": 50, "mixing": 0.2, "degree_exponent": 2.5,
        "triadic_closure": 0.3, "rewire_prob": 0.1,
        "segregation": 0.6,  # groups across social communities
        "features": {"informative": 8, "informative_noise": 1.0, "proxy": 4, "proxy_strength": 1.0, "noise": 4},
    },
    "crime": {
        "background_rate": 0.02,  # mean background incidents per place per day
        "hotspot_sd": 1.0,  # sd of the log background rate across places (0 = flat)
        "hotspot_scale": 2.0,  # correlation length of the hotspot field, in grid cells
        "near_repeat": 0.2,  # expected near-repeat offspring per incident (branching ratio, space)
        "social": 0.1,  # expected offspring per incident through a tie of the person involved (branching, ties)
        "mean_delay_days": 10.0,  # mean delay from an incident to each of its offspring
        "spread": 0.5,  # sd, in grid cells, of a near-repeat's offset (rounded, reflected at the edge)
        "risk_effect": 1.0,  # log effect of individual risk on the chance of being the person involved
        "group_effect": {},  # optional log offsets per group on that chance: true rate differences
    },
    "patrol": {
        "coverage": 0.3,  # mean patrol presence over places, in (0, 1)
        "hotspot_effect": 1.0,  # logit effect of the (standardised) log background rate on presence
        "group_effect": {"minority": 1.5},  # logit effect of each group's share of residents on presence
    },
    "observation": {  # P(recorded): presence * patrolled[group] + (1 - presence) * unpatrolled[group]
        "detection_patrolled": {"majority": 0.8, "minority": 0.9},
        "detection_unpatrolled": {"majority": 0.3, "minority": 0.3},
    },
}

# mappings keyed by group name: a user's value replaces the default whole instead of merging into it
GROUP_KEYED = ("groups", "crime.group_effect", "patrol.group_effect", "observation.detection_patrolled",
               "observation.detection_unpatrolled")


def merged(cfg: DictConfig | Mapping[str, Any] | None) -> DictConfig:
    """The defaults with `cfg` laid over them; an unknown key is refused with the known ones."""
    user = OmegaConf.create(dict(cfg) if isinstance(cfg, Mapping) and not isinstance(cfg, DictConfig)
                            else (cfg if cfg is not None else {}))
    base = OmegaConf.create(DEFAULTS)
    for key in GROUP_KEYED:
        value = OmegaConf.select(user, key, default=None)
        if value is not None:
            OmegaConf.update(base, key, value, merge=False)
    OmegaConf.set_struct(base, True)
    try:
        out = OmegaConf.merge(base, user)
    except ConfigKeyError as err:
        key = str(err.full_key)
        parent = OmegaConf.select(base, key.rpartition(".")[0]) if "." in key else base
        known = ", ".join(map(str, parent.keys())) if isinstance(parent, DictConfig) else ""
        raise ConfigError(f"data.{key}", OmegaConf.select(user, key), f"unknown key; the known keys are {known}") \
            from None
    OmegaConf.set_struct(out, False)
    return out


def grid_side(cfg: DictConfig) -> int:
    """Places per side of the square grid."""
    return max(2, round(np.sqrt(int(cfg.num_people) / float(cfg.people_per_place))))


def group_values(cfg: DictConfig, key: str, names: list[str], default: float | None,
                 low: float | None = None, high: float | None = None) -> np.ndarray:
    """Read {group: value} (a bare number means every group) into an array ordered like `names`."""
    field = f"data.{key}"
    table = OmegaConf.select(cfg, key)
    if table is None or isinstance(table, (int, float)) and not isinstance(table, bool):
        value = check_number(field, default if table is None else table, low=low, high=high)
        return np.full(len(names), value)
    if not isinstance(table, DictConfig):
        raise ConfigError(field, table, "expected a number or a mapping {group name: number}")
    unknown = [k for k in table if k not in names]
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}", table[unknown[0]],
                          "unknown group name; the groups are " + ", ".join(names))
    if default is None and (missing := [n for n in names if n not in table]):
        raise ConfigError(f"{field}.{missing[0]}", None, "missing value for this group")
    return np.array([check_number(f"{field}.{n}", table.get(n, default), low=low, high=high) for n in names])


def validate(cfg: DictConfig) -> tuple[list[str], np.ndarray]:
    """Check every knob of the city (merged over the defaults); return group names and size fractions."""
    n = check_number("data.num_people", cfg.num_people, low=50, high=50_000_000, integer=True)
    check_number("data.people_per_place", cfg.people_per_place, low=1.0, high=n)
    check_number("data.periods", cfg.periods, low=1, integer=True)
    check_number("data.period_days", cfg.period_days, low=0.0, low_open=True)
    check_number("data.segregation", cfg.segregation, low=0.0, high=1.0)
    check_number("data.frequents", cfg.frequents, low=0, high=50, integer=True)
    check_number("data.travel_sd", cfg.travel_sd, low=0.0)
    p = cfg.people
    check_choice("data.people.topology", p.topology, TOPOLOGIES)
    check_number("data.people.mean_degree", p.mean_degree, low=1.0, high=n / 2)
    check_number("data.people.num_communities", p.num_communities, low=1, high=n, integer=True)
    check_number("data.people.mixing", p.mixing, low=0.0, high=1.0)
    check_number("data.people.degree_exponent", p.degree_exponent, low=2.0, low_open=True)
    check_number("data.people.triadic_closure", p.triadic_closure, low=0.0, high=1.0, high_open=True)
    check_number("data.people.rewire_prob", p.rewire_prob, low=0.0, high=1.0)
    check_number("data.people.segregation", p.segregation, low=0.0, high=1.0)
    for k in ("informative", "proxy", "noise"):
        check_number(f"data.people.features.{k}", p.features[k], low=0, integer=True)
    check_number("data.people.features.informative_noise", p.features.informative_noise, low=0.0)
    check_number("data.people.features.proxy_strength", p.features.proxy_strength, low=0.0)
    c = cfg.crime
    check_number("data.crime.background_rate", c.background_rate, low=0.0, low_open=True)
    check_number("data.crime.hotspot_sd", c.hotspot_sd, low=0.0, high=5.0)
    check_number("data.crime.hotspot_scale", c.hotspot_scale, low=0.0)
    check_number("data.crime.near_repeat", c.near_repeat, low=0.0, high=1.0)
    check_number("data.crime.social", c.social, low=0.0, high=1.0)
    if float(c.near_repeat) + float(c.social) >= 1.0:
        raise ConfigError("data.crime.social", c.social, f"near_repeat + social must stay below 1 (a stable "
                          f"process), near_repeat is {c.near_repeat}")
    check_number("data.crime.mean_delay_days", c.mean_delay_days, low=0.0, low_open=True)
    check_number("data.crime.spread", c.spread, low=0.0, high=5.0)
    check_number("data.crime.risk_effect", c.risk_effect)
    check_number("data.patrol.coverage", cfg.patrol.coverage, low=0.0, high=1.0, low_open=True, high_open=True)
    check_number("data.patrol.hotspot_effect", cfg.patrol.hotspot_effect)
    groups = cfg.groups
    if not isinstance(groups, DictConfig) or len(groups) < 2:
        raise ConfigError("data.groups", groups, "expected a mapping of at least two {group name: size fraction}")
    names = [str(k) for k in groups]
    sizes = np.array([check_number(f"data.groups.{k}", groups[k], low=0.0, high=1.0, low_open=True) for k in names])
    if abs(sizes.sum() - 1.0) > 1e-6:
        raise ConfigError("data.groups", OmegaConf.to_container(groups), "group size fractions must sum to 1")
    group_values(cfg, "crime.group_effect", names, 0.0)
    group_values(cfg, "patrol.group_effect", names, 0.0)
    group_values(cfg, "observation.detection_patrolled", names, None, 0.0, 1.0)
    group_values(cfg, "observation.detection_unpatrolled", names, None, 0.0, 1.0)
    return names, sizes
