"""The city: one heterogeneous graph of people, places and incidents whose ground truth is known.

Generation order (all vectorised, seeded from one numpy Generator):
  1. people: the social graph, communities, groups, latent risk and features of
     `gnnrisk.data.synthetic` (same functions, same knobs under `people`);
  2. places: a grid; a smooth hotspot field of background rates; group territories (bands);
     homes (own territory with probability `segregation`); frequented places around home;
  3. patrols: presence per place from the hotspots and the residents' groups;
  4. incidents over `periods` x `period_days` days: the self-exciting process of `incidents`
     (background by place, near-repeats across nearby places, social offspring along ties), with
     each incident's parent and cause, and the exact expected count per place and person per period;
  5. the record: an incident is recorded with probability
     presence * detection_patrolled[group] + (1 - presence) * detection_unpatrolled[group],
     group being that of the person involved; every incident stays in the graph with `recorded`;
  6. ids shuffled per node type, so that order leaks neither time, grid position, community nor group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import HeteroData

from gnnrisk.data import synthetic as syn
from gnnrisk.data.city import config as cc
from gnnrisk.data.city import incidents as ic
from gnnrisk.data.city import places as pl

RELATIONS = (("person", "knows", "person"), ("person", "lives_at", "place"), ("person", "frequents", "place"),
             ("incident", "occurred_at", "place"), ("person", "involved_in", "incident"),
             ("place", "adjacent", "place"))


def _t(a: np.ndarray) -> torch.Tensor:
    """A numpy array as a tensor (int64 and float32 for ids and values)."""
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a))


def _edges(src: np.ndarray, dst: np.ndarray, num_dst: int) -> torch.Tensor:
    """Directed edges [2, E] sorted by source then target (PyG's coalesced order)."""
    order = np.argsort(src.astype(np.int64) * num_dst + dst)
    return torch.from_numpy(np.stack([src[order], dst[order]]).astype(np.int64))


def generate_city(cfg: DictConfig | Mapping[str, Any] | None, seed: int) -> HeteroData:
    """Generate the city that `cfg` describes (merged over `config.DEFAULTS`) for `seed`."""
    cfg = cc.merged(cfg)
    names, sizes = cc.validate(cfg)
    rng = np.random.default_rng(seed)
    n, side = int(cfg.num_people), cc.grid_side(cfg)
    num_places = side * side

    # 1. people
    pcfg = OmegaConf.merge(cfg.people, {"num_nodes": n})
    edges, community = syn.make_topology(pcfg, rng)
    group = syn.assign_groups(community, sizes, float(cfg.people.segregation), rng)
    risk = rng.standard_normal(n)
    x = syn.make_features(risk, group, len(names), pcfg, rng)

    # 2-3. places, homes, haunts, patrols
    c = cfg.crime
    rates = pl.hotspot_rates(side, float(c.background_rate), float(c.hotspot_sd), float(c.hotspot_scale), rng)
    territory = pl.territories(side, sizes, rng)
    home = pl.homes(group, territory, float(cfg.segregation), rng)
    freq = pl.frequented(home, side, int(cfg.frequents), float(cfg.travel_sd), rng)
    att = pl.attachments(home, freq, num_places)
    presence, share = pl.patrol_presence(rates, home, group, len(names), float(cfg.patrol.coverage),
                                         float(cfg.patrol.hotspot_effect),
                                         cc.group_values(cfg, "patrol.group_effect", names, 0.0))

    # 4. incidents and their expected counts
    weight = np.exp(float(c.risk_effect) * risk + cc.group_values(cfg, "crime.group_effect", names, 0.0)[group])
    soc = ic.society(side, rates, att, weight, edges, n)
    crime = ic.Crime(near_repeat=float(c.near_repeat), social=float(c.social),
                     mean_delay_days=float(c.mean_delay_days), spread=float(c.spread),
                     horizon=int(cfg.periods) * float(cfg.period_days), period_days=float(cfg.period_days),
                     periods=int(cfg.periods))
    inc = ic.simulate(soc, crime, rng)
    place_rate, person_rate = ic.expected_counts(soc, crime, inc, n)

    # 5. the record
    g_inc = group[inc["person"]]
    det_p = cc.group_values(cfg, "observation.detection_patrolled", names, None, 0.0, 1.0)
    det_u = cc.group_values(cfg, "observation.detection_unpatrolled", names, None, 0.0, 1.0)
    pres = presence[inc["place"]]
    p_record = pres * det_p[g_inc] + (1 - pres) * det_u[g_inc]
    recorded = rng.random(p_record.size) < p_record

    # 6. shuffle ids per node type (new id of old i is perm[i]) and assemble
    m = inc["t"].size
    perm_person, perm_place, perm_inc = rng.permutation(n), rng.permutation(num_places), rng.permutation(m)
    inv_person, inv_place, inv_inc = np.argsort(perm_person), np.argsort(perm_place), np.argsort(perm_inc)
    data = HeteroData()
    data.name = "city"
    data.group_names = names
    data.cause_names = list(ic.CAUSES)
    data.num_periods, data.period_days, data.grid_size = int(cfg.periods), float(cfg.period_days), side
    data.detection_patrolled, data.detection_unpatrolled = _t(det_p), _t(det_u)  # per group: the record's model

    person = data["person"]
    person.num_nodes = n
    person.x = torch.from_numpy(x[inv_person])
    person.group = _t(group[inv_person])
    person.community = _t(community[inv_person].astype(np.int64))
    person.risk = _t(risk[inv_person])
    person.rate = _t(person_rate[inv_person])

    place = data["place"]
    place.num_nodes = num_places
    place.pos = _t(np.stack(np.divmod(np.arange(num_places), side), axis=1)[inv_place])
    place.background_rate = _t(rates[inv_place])
    place.rate = _t(place_rate[inv_place])
    place.patrol = _t(presence[inv_place])
    place.territory = _t(territory[inv_place])
    place.resident_share = _t(share[inv_place])

    incident = data["incident"]
    incident.num_nodes = m
    parent = inc["parent"]
    incident.time = torch.from_numpy(inc["t"][inv_inc])  # float64: the period boundaries stay exact
    incident.period = _t(np.minimum(inc["t"] // crime.period_days, crime.periods - 1).astype(np.int64)[inv_inc])
    incident.parent = _t(np.where(parent >= 0, perm_inc[np.maximum(parent, 0)], -1)[inv_inc])
    incident.cause = _t(inc["cause"].astype(np.int64)[inv_inc])
    incident.group = _t(g_inc[inv_inc])
    incident.recorded = torch.from_numpy(recorded[inv_inc])
    incident.p_record = _t(p_record[inv_inc])

    knows_src = perm_person[np.concatenate([edges[0], edges[1]])]
    knows_dst = perm_person[np.concatenate([edges[1], edges[0]])]
    adj = perm_place[pl.grid_adjacency(side)]
    rel = {
        ("person", "knows", "person"): (knows_src, knows_dst),
        ("person", "lives_at", "place"): (perm_person, perm_place[home]),
        ("person", "frequents", "place"): (perm_person[freq[0]], perm_place[freq[1]]),
        ("incident", "occurred_at", "place"): (perm_inc, perm_place[inc["place"]]),
        ("person", "involved_in", "incident"): (perm_person[inc["person"]], perm_inc),
        ("place", "adjacent", "place"): (adj[0], adj[1]),
    }
    for (src_type, name, dst_type), (s, d) in rel.items():
        data[src_type, name, dst_type].edge_index = _edges(s, d, data[dst_type].num_nodes)
        if src_type != dst_type:  # the reverse relation, named as torch_geometric's ToUndirected names it
            data[dst_type, f"rev_{name}", src_type].edge_index = _edges(d, s, data[src_type].num_nodes)
    return data
