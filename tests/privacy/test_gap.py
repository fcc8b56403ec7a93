"""GAP (gap_edp, gap_ndp): noise calibration, accounting cross-checks, aggregation norms, utility, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dp_accounting as dpa
import numpy as np
import pytest
import torch
from dp_accounting.rdp import RdpAccountant
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, stochastic_blockmodel_graph, to_undirected

from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment
from gnnrisk.privacy import build_mechanism
from gnnrisk.privacy.gap import edp_epsilon, ndp_epsilon
from gnnrisk.privacy.gap_model import bound_out_degree, perturbed_aggregations, sum_aggregate

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
MODEL = OmegaConf.create({"name": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0})
TRAIN = OmegaConf.create({"epochs": 60, "lr": 0.01, "weight_decay": 5e-4, "patience": 60, "monitor": "val_loss",
                          "batch_size": None, "num_neighbors": [10, 10]})


def privacy_cfg(name: str, **overrides) -> OmegaConf:
    """The shipped `configs/privacy/<name>.yaml` with overrides."""
    return OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / "privacy" / f"{name}.yaml"), overrides)


def sbm_graph(seed: int, n: int = 600) -> Data:
    """Two communities; the label is the community and features are only weakly informative,
    so the aggregations carry most of the signal (utility must then depend on the noise)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    edge_index = stochastic_blockmodel_graph([n // 2, n // 2], [[0.06, 0.01], [0.01, 0.06]])
    edge_index = coalesce(to_undirected(edge_index), num_nodes=n)
    y = torch.cat([torch.zeros(n // 2), torch.ones(n // 2)]).long()
    x = torch.randn(n, 8, generator=g)
    x[:, 0] += 0.3 * y
    perm = torch.randperm(n, generator=g)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][perm[: n // 2]] = True
    masks[1][perm[n // 2: 3 * n // 4]] = True
    masks[2][perm[3 * n // 4:]] = True
    return Data(x=x, edge_index=edge_index, y=y, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2],
                num_nodes=n)


def test_auroc(name: str, epsilon: float, seed: int, **overrides) -> float:
    """Test AUROC of one GAP run on the SBM graph."""
    data = sbm_graph(seed)
    trained = build_mechanism(privacy_cfg(name, epsilon=epsilon, **overrides)).train(data, MODEL, TRAIN, seed)
    prob = trained.predict_proba()[data.test_mask, 1]
    return roc_auc_score(data.y[data.test_mask].numpy(), prob.numpy())


test_auroc.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("name", ["gap_edp", "gap_ndp"])
def test_noise_is_positive_and_falls_with_epsilon(name):
    data = sbm_graph(0)
    stds, spent = [], []
    for eps in (0.5, 1.0, 4.0, 8.0):
        p = build_mechanism(privacy_cfg(name, epsilon=eps)).calibrate(data)
        assert 0 < p["epsilon"] <= eps and p["epsilon"] > 0.99 * eps  # spends (almost) all, never more
        stds.append(p["aggregation_noise_std"])
        spent.append(p["epsilon"])
    assert all(s > 0.1 for s in stds)
    assert all(a > b for a, b in zip(stds, stds[1:]))  # strictly less noise for a larger budget


@pytest.mark.parametrize("z,hops,delta", [(1.7, 2, 4e-6), (0.5, 2, 1e-5), (5.0, 3, 1e-6), (1.0, 1, 1e-5),
                                          (20.0, 2, 1e-5)])
def test_edp_accounting_matches_dp_accounting(z, hops, delta):
    accountant = RdpAccountant()
    accountant.compose(dpa.GaussianDpEvent(z), hops)
    assert edp_epsilon(z, hops, delta) == pytest.approx(accountant.get_epsilon(delta), rel=0.01)


@pytest.mark.parametrize("z,q,enc,cls,hops,delta", [(1.4, 0.1024, 100, 100, 2, 2e-5), (3.0, 0.05, 400, 200, 3, 1e-5)])
def test_ndp_accounting_matches_dp_accounting(z, q, enc, cls, hops, delta):
    sgd = dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z))
    accountant = RdpAccountant()
    accountant.compose(sgd, enc)
    accountant.compose(dpa.GaussianDpEvent(z), hops)
    accountant.compose(sgd, cls)
    assert ndp_epsilon(z, hops, q, enc, cls, delta) == pytest.approx(accountant.get_epsilon(delta), rel=0.01)


def test_edp_sensitivity_is_counted_for_undirected_edges():
    data = sbm_graph(0)
    p = build_mechanism(privacy_cfg("gap_edp", epsilon=2.0)).calibrate(data)
    assert p["aggregation_sensitivity"] == pytest.approx(math.sqrt(2))
    assert p["aggregation_noise_std"] == pytest.approx(p["noise_multiplier"] * math.sqrt(2))
    assert p["delta"] == pytest.approx(1 / (10 * data.edge_index.size(1) // 2))
    assert p["epsilon"] == pytest.approx(edp_epsilon(p["noise_multiplier"], 2, p["delta"]))


@pytest.mark.parametrize("name", ["gap_edp", "gap_ndp"])
def test_explicit_delta_is_used_and_a_smaller_delta_costs_noise(name):
    data = sbm_graph(0)
    loose = build_mechanism(privacy_cfg(name, epsilon=4.0, delta=1e-3)).calibrate(data)
    tight = build_mechanism(privacy_cfg(name, epsilon=4.0, delta=1e-8)).calibrate(data)
    assert loose["delta"] == 1e-3 and tight["delta"] == 1e-8
    assert tight["aggregation_noise_std"] > loose["aggregation_noise_std"]


def test_hop_rows_are_normalised_and_one_edge_moves_the_sum_by_at_most_one_per_row():
    data = sbm_graph(1)
    x0 = torch.randn(data.num_nodes, 5) * 3
    hops = perturbed_aggregations(x0, data.edge_index, hops=3, noise_std=0.0)
    assert hops.shape == (data.num_nodes, 4, 5)
    norms = hops.norm(dim=-1)
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    assert torch.allclose(norms[:, 0], torch.ones(data.num_nodes), atol=1e-5)
    assert torch.allclose(norms[deg > 0, 1:], torch.ones_like(norms[deg > 0, 1:]), atol=1e-4)
    # pre-noise sum of unit rows: norm <= in-degree; removing edge {u, v} changes rows u and v only, each by <= 1
    unit = hops[:, 0]
    full = sum_aggregate(unit, data.edge_index, data.num_nodes)
    assert (full.norm(dim=-1) <= deg + 1e-4).all()
    u, v = data.edge_index[:, 0].tolist()
    src, dst = data.edge_index
    keep = ~(((src == u) & (dst == v)) | ((src == v) & (dst == u)))
    diff = (full - sum_aggregate(unit, data.edge_index[:, keep], data.num_nodes)).norm(dim=-1)
    assert set(diff.nonzero().flatten().tolist()) == {u, v}
    assert torch.allclose(diff[[u, v]], torch.ones(2), atol=1e-5)


def test_noise_is_added_to_every_hop_with_the_calibrated_std():
    data = sbm_graph(2)
    x0 = torch.randn(data.num_nodes, 64)
    g = torch.Generator().manual_seed(0)
    # with huge noise the normalised hop is the normalised noise: its coordinates have variance 1/H
    noisy = perturbed_aggregations(x0, data.edge_index, hops=2, noise_std=1e6, generator=g)
    clean = perturbed_aggregations(x0, data.edge_index, hops=2, noise_std=0.0)
    assert (noisy[:, 1:] - clean[:, 1:]).abs().mean() > 0.05
    assert noisy[:, 1:].var().item() == pytest.approx(1 / 64, rel=0.05)
    assert torch.equal(noisy[:, 0], clean[:, 0])  # hop 0 (the encoder output) carries no noise


def test_bound_out_degree_keeps_a_random_subset_of_at_most_d_out_edges():
    data = sbm_graph(3)
    g = torch.Generator().manual_seed(0)
    bounded = bound_out_degree(data.edge_index, data.num_nodes, 5, g)
    out_deg = torch.bincount(bounded[0], minlength=data.num_nodes)
    orig = torch.bincount(data.edge_index[0], minlength=data.num_nodes)
    assert torch.equal(out_deg, orig.clamp(max=5))
    as_set = set(map(tuple, data.edge_index.t().tolist()))
    assert set(map(tuple, bounded.t().tolist())) <= as_set
    other = bound_out_degree(data.edge_index, data.num_nodes, 5, torch.Generator().manual_seed(1))
    assert not torch.equal(bounded, other)


@pytest.mark.slow
def test_edp_utility_rises_with_epsilon_and_beats_chance_only_with_budget():
    seeds = (0, 1, 2)
    low = np.mean([test_auroc("gap_edp", 0.1, s, encoder_epochs=30) for s in seeds])
    high = np.mean([test_auroc("gap_edp", 16.0, s, encoder_epochs=30) for s in seeds])
    free = np.mean([test_auroc("gap_edp", math.inf, s, encoder_epochs=30) for s in seeds])
    assert high > low + 0.1, (low, high)
    assert free > 0.9 and high > 0.85, (high, free)


@pytest.mark.slow
def test_ndp_utility_rises_with_epsilon():
    seeds = (0, 1, 2)
    # node-level noise is large on a 600-node graph (aggregation std = z sqrt(D)), so compare a tight
    # budget with a loose one; measured: about 0.48 vs 0.93 mean AUROC
    kw = dict(max_degree=20, batch_size=100, encoder_epochs=3, epochs=20, lr=0.03)
    low = np.mean([test_auroc("gap_ndp", 0.5, s, **kw) for s in seeds])
    high = np.mean([test_auroc("gap_ndp", 500.0, s, **kw) for s in seeds])
    assert low < 0.65 and high > low + 0.2, (low, high)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gap_edp", "gap_ndp"])
def test_same_seed_same_numbers(name):
    data = sbm_graph(4)
    cfg = privacy_cfg(name, epsilon=4.0, encoder_epochs=5, **({"epochs": 3} if name == "gap_ndp" else {}))
    train = OmegaConf.merge(TRAIN, {"epochs": 5})
    a = build_mechanism(cfg).train(data, MODEL, train, 7).predict_proba()
    b = build_mechanism(cfg).train(data, MODEL, train, 7).predict_proba()
    c = build_mechanism(cfg).train(data, MODEL, train, 8).predict_proba()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_released_model_answers_from_the_cache_and_ignores_the_graph():
    data = sbm_graph(5)
    trained = build_mechanism(privacy_cfg("gap_edp", epsilon=4.0, encoder_epochs=5)).train(
        data, MODEL, OmegaConf.merge(TRAIN, {"epochs": 5}), 0)
    model = trained.model.eval()
    with torch.no_grad():
        full = model(data.x, data.edge_index)
        no_edges = model(data.x, data.edge_index[:, :0])
        x = data.x.clone()
        x[0] += 5.0
        moved = model(x, data.edge_index)
    assert torch.equal(full, no_edges)
    changed = (moved - full).abs().sum(-1) > 0
    assert changed[0] and changed.sum() == 1  # a node's own features only move its own hop 0
    with pytest.raises(Exception, match="nodes it aggregated"):
        model(data.x[:10], data.edge_index[:, :0])


@pytest.mark.parametrize("name,field,value", [
    ("gap_edp", "epsilon", 0), ("gap_edp", "epsilon", -1.0), ("gap_edp", "epsilon", float("nan")),
    ("gap_edp", "epsilon", "four"), ("gap_edp", "delta", 0.0), ("gap_edp", "delta", 1.0),
    ("gap_edp", "delta", 1.5), ("gap_edp", "hops", 0), ("gap_ndp", "hops", 0),
    ("gap_ndp", "max_degree", 0), ("gap_ndp", "epsilon", -2.0), ("gap_ndp", "batch_size", 0),
    ("gap_ndp", "max_grad_norm", 0.0), ("gap_ndp", "batch_norm", True),
])
def test_bad_config_names_the_field(name, field, value):
    with pytest.raises(ConfigError, match=f"privacy.{field}"):
        build_mechanism(privacy_cfg(name, **{field: value}))


@pytest.mark.parametrize("name", ["gap_edp", "gap_ndp"])
def test_unreachable_epsilon_and_unsupported_model_are_config_errors(name):
    data = sbm_graph(0)
    with pytest.raises(ConfigError, match="privacy.epsilon.*unreachable"):
        build_mechanism(privacy_cfg(name, epsilon=1e-3)).calibrate(data)
    gat = OmegaConf.merge(MODEL, {"name": "gat"})
    with pytest.raises(ConfigError, match="model.name.*supports model=gcn or model=sage"):
        build_mechanism(privacy_cfg(name)).train(data, gat, TRAIN, 0)


@pytest.mark.parametrize("name", ["gap_edp", "gap_ndp"])
def test_hydra_run_writes_privacy_fields(name, tmp_path):
    GlobalHydra.instance().clear()
    overrides = [f"privacy={name}", "data.num_nodes=400", "train.epochs=5", "privacy.encoder_epochs=5"] + (
        ["privacy.epochs=2"] if name == "gap_ndp" else [])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
        run_experiment(cfg, tmp_path)
    GlobalHydra.instance().clear()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["mechanism"] == name and m["privacy_unit"] == ("edge" if name == "gap_edp" else "node")
    assert 0 < m["epsilon"] <= cfg.privacy.epsilon and 0 < m["delta"] < 1
    assert m["aggregation_noise_std"] > 0 and m["hops"] == 2
    if name == "gap_ndp":
        assert m["max_degree"] == cfg.privacy.max_degree and m["encoder_noise_multiplier"] > 0
        assert m["delta"] == pytest.approx(1 / (10 * m["num_nodes"]))
    else:
        assert m["delta"] == pytest.approx(1 / (10 * m["num_edges"]))
    assert 0 <= m["test_auroc"] <= 1
