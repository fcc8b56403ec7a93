"""The synthetic population: its contract, its ground truth, and its knobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy import stats

from gnnrisk.data import build_dataset
from foundation_helpers import CONFIG_DIR
from gnnrisk.errors import ConfigError


def binomial_ci(successes: int, trials: int, level: float = 0.999) -> tuple[float, float]:
    """Clopper-Pearson two-sided interval."""
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=level)
    return ci.low, ci.high


@pytest.fixture(scope="module")
def world():
    cfg = OmegaConf.load(f"{CONFIG_DIR}/data/synthetic.yaml")
    cfg.num_nodes = 20000
    return cfg, build_dataset(cfg, seed=7)


def test_contract_fields_and_shapes(world):
    cfg, d = world
    n = cfg.num_nodes
    for key in ("x", "edge_index", "y", "y_true", "group", "community", "causal_edge_mask", "train_mask",
                "val_mask", "test_mask", "ind_train_mask", "ind_test_mask"):
        assert getattr(d, key) is not None, key
    assert d.x.shape == (n, cfg.features.informative + cfg.features.proxy + cfg.features.noise)
    assert d.causal_edge_mask.shape == (d.num_edges,)
    # undirected, coalesced, no self-loops
    src, dst = d.edge_index
    assert (src != dst).all()
    fwd = set(zip(src.tolist(), dst.tolist()))
    assert all((v, u) in fwd for u, v in list(fwd)[:5000])
    assert len(fwd) == d.num_edges
    assert d.num_edges / n == pytest.approx(cfg.mean_degree, rel=0.02)
    # masks partition the nodes; the inductive split is disjoint and covers everything
    total = d.train_mask.int() + d.val_mask.int() + d.test_mask.int()
    assert (total == 1).all()
    assert not (d.ind_train_mask & d.ind_test_mask).any() and (d.ind_train_mask | d.ind_test_mask).all()


def test_group_sizes_and_detection_rates(world):
    cfg, d = world
    names = list(cfg.groups.keys())
    for g, name in enumerate(names):
        members = int((d.group == g).sum())
        lo, hi = binomial_ci(members, cfg.num_nodes)
        # sizes are exact in expectation; segregation only moves people between communities
        assert lo - 0.02 <= cfg.groups[name] <= hi + 0.02
        positives = (d.group == g) & (d.y_true == 1)
        detected = int(d.y[positives].sum())
        lo, hi = binomial_ci(detected, int(positives.sum()))
        assert lo <= cfg.observation.detection_rate[name] <= hi, name
        # no false reports by default
        assert int(d.y[(d.group == g) & (d.y_true == 0)].sum()) == 0


def test_false_reports_follow_their_rate():
    cfg = OmegaConf.load(f"{CONFIG_DIR}/data/synthetic.yaml")
    cfg.num_nodes = 20000
    cfg.observation.false_report_rate.majority = 0.1
    d = build_dataset(cfg, seed=3)
    negatives = (d.group == 0) & (d.y_true == 0)
    lo, hi = binomial_ci(int(d.y[negatives].sum()), int(negatives.sum()))
    assert lo <= 0.1 <= hi


def test_outcome_spreads_along_causal_edges(world):
    _, d = world
    src, dst = d.edge_index[:, d.causal_edge_mask]
    assert src.numel() > 0
    assert (d.y_true[src] == 1).all() and (d.y_true[dst] == 1).all()
    # contagion matters: many positives got it from a tie, so it is not just an own-risk outcome
    infected_by_tie = torch.zeros(d.num_nodes, dtype=torch.bool)
    infected_by_tie[dst] = True
    assert infected_by_tie.sum() > 0.3 * d.y_true.sum()
    # equal true rates across groups by default (no group effect on the outcome)
    rates = [d.y_true[d.group == g].float().mean().item() for g in (0, 1)]
    assert abs(rates[0] - rates[1]) < 0.03


def test_homophily_and_segregation(world):
    _, d = world
    src, dst = d.edge_index
    assert (d.community[src] == d.community[dst]).float().mean() > 0.6
    same_group = (d.group[src] == d.group[dst]).float().mean().item()
    p = d.group.float().mean().item()
    assert same_group > (p ** 2 + (1 - p) ** 2) + 0.1  # more same-group ties than random mixing


def test_node_ids_leak_nothing(world):
    _, d = world
    ids = np.arange(d.num_nodes)
    for attr in ("community", "group", "y_true"):
        rho, _ = stats.spearmanr(ids, getattr(d, attr).numpy())
        assert abs(rho) < 0.03, attr


def test_same_seed_same_world_other_seed_other_world(synthetic_cfg):
    synthetic_cfg.num_nodes = 2000
    a, b, c = (build_dataset(synthetic_cfg, s) for s in (5, 5, 6))
    for key in ("x", "edge_index", "y", "y_true", "group", "causal_edge_mask", "train_mask"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    assert not torch.equal(a.y_true, c.y_true)


@pytest.mark.parametrize("topology", ["dcsbm", "holme_kim", "barabasi_albert", "watts_strogatz"])
def test_every_topology_builds_a_valid_world(synthetic_cfg, topology):
    synthetic_cfg.num_nodes = 3000
    synthetic_cfg.topology = topology
    d = build_dataset(synthetic_cfg, 0)
    assert d.num_edges / d.num_nodes == pytest.approx(synthetic_cfg.mean_degree, rel=0.15)
    assert 0.02 < d.y_true.float().mean() < 0.9


@pytest.mark.parametrize("path, value, field", [
    ("num_nodes", -5, "data.num_nodes"),
    ("topology", "lfr", "data.topology"),
    ("groups", {"majority": 0.7, "minority": 0.4}, "data.groups"),
    ("observation.detection_rate", {"majority": 0.5, "minrity": 0.9}, "data.observation.detection_rate.minrity"),
    ("observation.detection_rate", {"majority": 1.5, "minority": 0.9}, "data.observation.detection_rate.majority"),
    ("outcome.group_effect", {"others": 1.0}, "data.outcome.group_effect.others"),
    ("segregation", float("nan"), "data.segregation"),
    ("outcome.base_rate", 0.0, "data.outcome.base_rate"),
])
def test_bad_knobs_name_the_field(synthetic_cfg, path, value, field):
    OmegaConf.update(synthetic_cfg, path, value, merge=False)
    with pytest.raises(ConfigError) as err:
        build_dataset(synthetic_cfg, 0)
    assert str(err.value).startswith(field)
