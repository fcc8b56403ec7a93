"""ProGAP (progap_edp, progap_ndp): accounting cross-checks, calibration, stages, noise, utility, errors."""

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
from gnnrisk.privacy.accounting import ORDERS
from gnnrisk.privacy.progap import ndp_epsilon
from gnnrisk.privacy.progap_model import nap

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
MODEL = OmegaConf.create({"name": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0})
TRAIN = OmegaConf.create({"epochs": 40, "lr": 0.01, "weight_decay": 5e-4, "patience": 40, "monitor": "val_loss",
                          "batch_size": None, "num_neighbors": [10, 10]})
NDP_FAST = dict(epochs=2, batch_size=100)


@pytest.fixture(autouse=True)
def _one_thread():
    """Bit-identical reruns and no oversubscription on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def privacy_cfg(name: str, **overrides) -> OmegaConf:
    """The shipped `configs/privacy/<name>.yaml` with overrides."""
    return OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / "privacy" / f"{name}.yaml"), overrides)


def sbm_graph(seed: int, n: int = 600) -> Data:
    """Two communities; the label is the community and the features are only weakly informative,
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


def train(name: str, data: Data, seed: int = 0, train_cfg=TRAIN, **overrides):
    """One ProGAP training run."""
    return build_mechanism(privacy_cfg(name, **overrides)).train(data, MODEL, train_cfg, seed)


def test_auroc(name: str, epsilon: float, seed: int, **overrides) -> float:
    """Test AUROC of one ProGAP run on the SBM graph."""
    data = sbm_graph(seed)
    prob = train(name, data, seed, epsilon=epsilon, **overrides).predict_proba()[data.test_mask, 1]
    return roc_auc_score(data.y[data.test_mask].numpy(), prob.numpy())


test_auroc.__test__ = False  # a helper, not a test


def google_epsilon(events: list[tuple[dpa.DpEvent, int]], delta: float) -> float:
    """Epsilon of the composed events by dp_accounting's RDP accountant over the same orders."""
    accountant = RdpAccountant(list(ORDERS))
    for event, count in events:
        accountant.compose(event, count)
    return accountant.get_epsilon(delta)


@pytest.mark.parametrize("target", [0.5, 1.0, 4.0, 8.0, 16.0])
def test_edp_calibration_spends_at_most_the_target_and_matches_dp_accounting(target):
    data = sbm_graph(0)
    p = build_mechanism(privacy_cfg("progap_edp", epsilon=target, hops=3)).calibrate(data)
    assert 0.99 * target < p["epsilon"] <= target
    z = p["noise_multiplier"]
    # K aggregations, each a Gaussian with std z*sqrt(2) over sensitivity sqrt(2): noise multiplier z
    assert p["aggregation_noise_std"] == pytest.approx(z * math.sqrt(2))
    assert p["epsilon"] == pytest.approx(google_epsilon([(dpa.GaussianDpEvent(z), 3)], p["delta"]), rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("target", [1.0, 4.0, 8.0, 16.0])
def test_ndp_calibration_spends_at_most_the_target_and_matches_dp_accounting(target):
    data = sbm_graph(0)
    p = build_mechanism(privacy_cfg("progap_ndp", epsilon=target, epochs=5, batch_size=100)).calibrate(data)
    assert 0.99 * target < p["epsilon"] <= target
    z, q = p["noise_multiplier"], p["sample_rate"]
    assert q == pytest.approx(100 / int(data.train_mask.sum())) and p["stage_steps"] == 5 * 3
    assert p["steps"] == 3 * p["stage_steps"] and p["stages"] == 3
    assert p["aggregation_noise_std"] == pytest.approx(z * math.sqrt(10))
    google = google_epsilon([(dpa.GaussianDpEvent(z), 2),
                             (dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), p["steps"])], p["delta"])
    assert p["epsilon"] == pytest.approx(google, rel=0.01)


@pytest.mark.parametrize("z,q,stage_steps,hops,delta", [(1.4, 0.1024, 100, 2, 2e-5), (3.0, 0.05, 400, 3, 1e-5),
                                                        (0.9, 0.2, 20, 1, 1e-6), (8.0, 0.01, 1000, 5, 1e-5)])
def test_ndp_accounting_matches_dp_accounting(z, q, stage_steps, hops, delta):
    google = google_epsilon([(dpa.GaussianDpEvent(z), hops),
                             (dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), (hops + 1) * stage_steps)], delta)
    assert ndp_epsilon(z, hops, q, stage_steps, delta) == pytest.approx(google, rel=0.01)


@pytest.mark.parametrize("name", ["progap_edp", "progap_ndp"])
def test_noise_falls_with_epsilon_and_more_stages_cost_noise(name):
    data = sbm_graph(0)
    stds = [build_mechanism(privacy_cfg(name, epsilon=eps)).calibrate(data)["aggregation_noise_std"]
            for eps in (1.0, 4.0, 16.0)]
    assert all(s > 0.1 for s in stds) and stds[0] > stds[1] > stds[2]
    deeper = build_mechanism(privacy_cfg(name, epsilon=4.0, hops=4)).calibrate(data)["aggregation_noise_std"]
    assert deeper > stds[1]


def test_one_undirected_edge_moves_one_nap_sum_by_at_most_sqrt2():
    data = sbm_graph(1)
    h = torch.randn(data.num_nodes, 5) * 3
    full = nap(h, data.edge_index, 0.0)
    u, v = data.edge_index[:, 0].tolist()
    src, dst = data.edge_index
    keep = ~(((src == u) & (dst == v)) | ((src == v) & (dst == u)))
    diff = full - nap(h, data.edge_index[:, keep], 0.0)
    rows = diff.norm(dim=-1)
    assert set(rows.nonzero().flatten().tolist()) == {u, v}
    assert torch.allclose(rows[[u, v]], torch.ones(2), atol=1e-5)
    assert float(diff.norm()) == pytest.approx(math.sqrt(2), abs=1e-5)  # the L2 sensitivity the accountant uses


@pytest.mark.slow
@pytest.mark.parametrize("name,extra", [("progap_edp", {}), ("progap_ndp", NDP_FAST)])
def test_cached_noise_has_the_calibrated_std_at_every_stage(name, extra):
    # statistical check: cache minus the noise-free NAP of the same (stage-time) embeddings is the noise
    data = sbm_graph(2)
    trained = train(name, data, train_cfg=OmegaConf.merge(TRAIN, {"epochs": 5}), epsilon=2.0, **extra)
    model, std = trained.model, trained.privacy["aggregation_noise_std"]
    explain_model, graph = trained.explainable()  # the graph the aggregations were computed on
    xs = [data.x]
    residuals = []
    with torch.no_grad():
        for k, embedder in enumerate(model.embedders):
            clean = nap(embedder(xs[-1]), graph.edge_index, 0.0)
            residuals.append(model.aggregations[:, k] - clean)
            xs.append(model.aggregations[:, k])
    n = residuals[0].numel()  # 600 nodes x 16 channels per stage
    for r in residuals:
        assert r.std().item() == pytest.approx(std, rel=0.03)  # sample-std error ~ 1/sqrt(2n) ~ 0.6%
        assert abs(r.mean().item()) < 4 * std / math.sqrt(n)
    corr = torch.corrcoef(torch.stack([residuals[0].flatten(), residuals[1].flatten()]))[0, 1]
    assert abs(corr.item()) < 4 / math.sqrt(n)  # a fresh draw per aggregation


@pytest.mark.slow
def test_edp_utility_rises_with_epsilon():
    # the GAP issue #3 trap: accuracy must move with epsilon (a zero noise scale would make them equal)
    seeds = (0, 1, 2)
    low = np.mean([test_auroc("progap_edp", 0.1, s) for s in seeds])
    high = np.mean([test_auroc("progap_edp", 16.0, s) for s in seeds])
    assert high > low + 0.1, (low, high)


def test_non_private_progap_learns_from_the_graph_and_reports_no_epsilon():
    seeds = (0, 1, 2)
    aurocs, gains = [], []
    for s in seeds:
        data = sbm_graph(s)
        trained = train("progap_edp", data, s, epsilon=math.inf)
        p = trained.privacy
        assert p["epsilon"] is None and p["delta"] is None and p["target_epsilon"] is None
        assert p["noise_multiplier"] == 0.0 and p["aggregation_noise_std"] == 0.0
        aurocs.append(roc_auc_score(data.y[data.test_mask].numpy(),
                                    trained.predict_proba()[data.test_mask, 1].numpy()))
        gains.append(p["stage2_val_acc"] - p["stage0_val_acc"])
    # trivial baselines: chance (0.5); stage 0 = the features-only MLP (only x[:, 0] weakly informative)
    assert np.mean(aurocs) > 0.9, aurocs
    assert np.mean(gains) > 0.15, gains


def test_ndp_non_private_variant_reports_no_epsilon():
    p = build_mechanism(privacy_cfg("progap_ndp", epsilon=math.inf)).calibrate(sbm_graph(0))
    assert p["epsilon"] is None and p["delta"] is None and p["noise_multiplier"] == 0.0
    assert p["aggregation_noise_std"] == 0.0 and p["privacy_unit"] == "node"


@pytest.mark.parametrize("name,extra", [("progap_edp", {}), ("progap_ndp", {"epochs": 2})])
def test_same_seed_same_numbers(name, extra):
    data = sbm_graph(4)
    short = OmegaConf.merge(TRAIN, {"epochs": 5})
    a = train(name, data, 7, short, epsilon=4.0, **extra).predict_proba()
    b = train(name, data, 7, short, epsilon=4.0, **extra).predict_proba()
    c = train(name, data, 8, short, epsilon=4.0, **extra).predict_proba()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_released_model_ignores_the_graph_and_the_explain_view_reaggregates():
    data = sbm_graph(5)
    trained = train("progap_edp", data, train_cfg=OmegaConf.merge(TRAIN, {"epochs": 5}), epsilon=4.0)
    model = trained.model.eval()
    with torch.no_grad():
        full = model(data.x, data.edge_index)
        assert torch.equal(full, model(data.x, data.edge_index[:, :0]))
        x = data.x.clone()
        x[0] += 5.0
        changed = (model(x, data.edge_index) - full).abs().sum(-1) > 0
        assert changed[0] and changed.sum() == 1  # a node's own features move only its own x_0
        explain_model, graph = trained.explainable()
        same = explain_model(graph.x, graph.edge_index)
        fewer = explain_model(graph.x, graph.edge_index[:, 100:])
    assert torch.allclose(same, full, atol=1e-4)  # the training noise, re-drawn: the released answers
    assert not torch.allclose(fewer, full, atol=1e-4)  # edges now matter
    with pytest.raises(Exception, match="nodes it aggregated"):
        model(data.x[:10])


def test_ndp_aggregates_over_the_degree_bounded_graph():
    data = sbm_graph(6)
    trained = train("progap_ndp", data, epsilon=8.0, max_degree=3, epochs=1)
    _, graph = trained.explainable()
    out_deg = torch.bincount(graph.edge_index[0], minlength=data.num_nodes)
    assert out_deg.max() <= 3 and graph.edge_index.size(1) < data.edge_index.size(1)


@pytest.mark.parametrize("layerwise", [False, True])
def test_layerwise_freezes_earlier_bases(layerwise):
    data = sbm_graph(7)
    model = train("progap_edp", data, train_cfg=OmegaConf.merge(TRAIN, {"epochs": 5}), epsilon=4.0,
                  layerwise=layerwise).model
    snapshot, final = model.embedders[0].state_dict(), model.classifier.bases[0].state_dict()
    same = all(torch.equal(snapshot[k], final[k]) for k in snapshot)
    assert same == layerwise  # progressive (default): earlier bases keep training at later stages


@pytest.mark.parametrize("jk", ["sum", "mean", "max"])
def test_other_jk_modes_train(jk):
    data = sbm_graph(8)
    prob = train("progap_edp", data, train_cfg=OmegaConf.merge(TRAIN, {"epochs": 3}), epsilon=4.0,
                 jk=jk).predict_proba()
    assert prob.shape == (data.num_nodes, 2) and torch.isfinite(prob).all()


@pytest.mark.parametrize("name,field,value", [
    ("progap_edp", "epsilon", 0), ("progap_edp", "epsilon", -1.0), ("progap_edp", "epsilon", float("nan")),
    ("progap_edp", "epsilon", "four"), ("progap_edp", "delta", 0.0), ("progap_edp", "delta", 1.0),
    ("progap_edp", "hops", 0), ("progap_edp", "hops", 1.5), ("progap_edp", "base_layers", 0),
    ("progap_edp", "head_layers", 0), ("progap_edp", "jk", "lstm"), ("progap_edp", "layerwise", "yes"),
    ("progap_edp", "stage_epochs", 0), ("progap_ndp", "hops", 0), ("progap_ndp", "max_degree", 0),
    ("progap_ndp", "epsilon", -2.0), ("progap_ndp", "batch_size", 0), ("progap_ndp", "max_grad_norm", 0.0),
    ("progap_ndp", "epochs", 0), ("progap_ndp", "lr", 0.0), ("progap_ndp", "batch_norm", True),
    ("progap_ndp", "delta", 1.5),
])
def test_bad_config_is_a_one_line_error_naming_the_field(name, field, value):
    with pytest.raises(ConfigError, match=f"privacy.{field}") as err:
        build_mechanism(privacy_cfg(name, **{field: value}))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["progap_edp", "progap_ndp"])
def test_unreachable_epsilon_and_unsupported_model_are_config_errors(name):
    data = sbm_graph(0)
    with pytest.raises(ConfigError, match="privacy.epsilon.*unreachable"):
        build_mechanism(privacy_cfg(name, epsilon=1e-3)).calibrate(data)
    for other in ("gat", "mlp"):
        wrong = OmegaConf.merge(MODEL, {"name": other})
        with pytest.raises(ConfigError, match="model.name.*supports model=gcn or model=sage"):
            build_mechanism(privacy_cfg(name)).check_model(wrong)  # before any training
        with pytest.raises(ConfigError, match="model.name.*supports model=gcn or model=sage"):
            build_mechanism(privacy_cfg(name)).train(data, wrong, TRAIN, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["progap_edp", "progap_ndp"])
def test_hydra_run_writes_privacy_fields(name, tmp_path):
    GlobalHydra.instance().clear()
    overrides = [f"privacy={name}", "data.num_nodes=500", "train.epochs=5", "threads=1"] + (
        ["privacy.epochs=2", "privacy.batch_size=64"] if name == "progap_ndp" else [])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
        run_experiment(cfg, tmp_path)
    GlobalHydra.instance().clear()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["mechanism"] == name and m["privacy_unit"] == ("edge" if name == "progap_edp" else "node")
    assert 0 < m["epsilon"] <= cfg.privacy.epsilon == m["target_epsilon"] and 0 < m["delta"] < 1
    assert m["hops"] == 2 and m["stages"] == 3 and m["noise_multiplier"] > 0
    assert m["aggregation_noise_std"] == pytest.approx(m["noise_multiplier"] * m["aggregation_sensitivity"])
    assert all(m[f"aggregation{k}_signal_rms"] >= 0 for k in (1, 2))
    val_accs = [f"stage{i}_val_acc" for i in range(3)]
    if name == "progap_ndp":  # private validation labels: per-stage accuracy only in the labelled diagnostics
        assert not set(val_accs) & set(m) and m["diagnostics_outside_epsilon"] == "diagnostics"
        diagnostics = json.loads((tmp_path / "diagnostics" / "diagnostics.json").read_text())
        assert all(0 <= diagnostics[k] <= 1 for k in val_accs)
    else:
        assert all(0 <= m[k] <= 1 for k in val_accs)
    if name == "progap_ndp":
        assert m["max_degree"] == cfg.privacy.max_degree and m["aggregation_sensitivity"] == pytest.approx(
            math.sqrt(cfg.privacy.max_degree))
        assert 0 < m["sample_rate"] < 1 and m["steps"] == 3 * m["stage_steps"] > 0
        assert m["delta"] == pytest.approx(1 / (10 * m["num_nodes"]))
    else:
        assert m["aggregation_sensitivity"] == pytest.approx(math.sqrt(2))
        assert m["delta"] == pytest.approx(1 / (10 * m["num_edges"]))
        assert all(1 <= m[f"stage{i}_epochs"] <= 5 for i in range(3))
    assert 0 <= m["test_auroc"] <= 1
    stages = {row.split(",")[0] for row in (tmp_path / m["history_file"]).read_text().splitlines()[1:]}
    assert stages == {"stage0", "stage1", "stage2"}


@pytest.mark.parametrize("name, extra", [("progap_edp", {"hops": 3}), ("progap_ndp", {"epochs": 5, "batch_size": 100})])
def test_declared_dp_event_recomputes_the_reported_epsilon(name, extra):
    """`dp_event()` (what gnnrisk-check recomputes) spends what the run reports: dp-accounting's RDP accountant
    gives the same epsilon (1%), and its PLD accountant no more; not private: no event."""
    from gnnrisk.check.checks import independent_epsilons

    data = sbm_graph(0)
    mechanism = build_mechanism(privacy_cfg(name, epsilon=4.0, **extra))
    p = mechanism.calibrate(data)
    found = independent_epsilons(mechanism.dp_event(p), p["delta"])
    assert found["rdp"] == pytest.approx(p["epsilon"], rel=0.01) and found["pld"] <= p["epsilon"] * 1.01
    assert build_mechanism(privacy_cfg(name, epsilon=float("inf"), **extra)).dp_event(
        build_mechanism(privacy_cfg(name, epsilon=float("inf"), **extra)).calibrate(data)) is None
