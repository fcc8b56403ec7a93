"""The node canary audit (`attack=canary_nodes`): its checks, its canary graphs, and its power and soundness."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch_geometric.data import Data
from torch_geometric.utils import degree

from gnnrisk.attack import headline_bound, validate_stage
from gnnrisk.attack.node_canary_audit import Settings, draw_canaries
from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment
from gnnrisk.privacy.base import NonPrivate

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
SMALL = ["data.num_nodes=800", "data.num_communities=16", "threads=1", "attack=canary_nodes"]
BLOCK = {"enabled": True, "num_canaries": 10, "degree": 3, "high_degree": 8, "high_degree_share": 0.2,
         "feature_scale": 40.0, "twins": True, "runs": 1}


def compose_run(overrides: list[str]):
    """Compose the app config with overrides (Hydra state cleared before and after)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
            return compose("config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def ring(n: int = 60) -> Data:
    """A ring graph with two classes and train/val/test masks."""
    src = torch.arange(n)
    und = torch.stack([src, (src + 1) % n])
    data = Data(x=torch.randn(n, 3), edge_index=torch.cat([und, und.flip(0)], 1), y=torch.arange(n) % 2,
                name="ring", group=torch.zeros(n, dtype=torch.long))
    data.train_mask = torch.arange(n) < 30
    data.val_mask = (torch.arange(n) >= 30) & (torch.arange(n) < 45)
    data.test_mask = torch.arange(n) >= 45
    return data


def stage(**block) -> OmegaConf:
    """An attack stage config selecting only canary_nodes with `block` over the defaults."""
    return OmegaConf.create({"name": "attacks", "target": {}, "canary_nodes": {**BLOCK, **block}})


@pytest.mark.parametrize(("field", "value"), [
    ("num_canaries", 0), ("num_canaries", 61), ("num_canaries", 2.5), ("degree", 0), ("degree", 61),
    ("high_degree", 100), ("high_degree_share", 1.5), ("high_degree_share", -0.1), ("feature_scale", 0.0),
    ("feature_scale", "far"), ("twins", "yes"), ("runs", 0), ("runs", 1000)])
def test_bad_values_are_one_line_config_errors(field, value):
    """Every bad value is refused before training, in one line naming the field."""
    with pytest.raises(ConfigError, match=rf"^attack\.canary_nodes\.{field}=") as err:
        validate_stage(stage(**{field: value}), ring(), "gcn")
    assert "\n" not in str(err.value)


def test_too_few_trials_refused():
    """One canary in one run leaves no trials to bound on: refused, naming num_canaries and runs."""
    with pytest.raises(ConfigError, match=r"attack\.canary_nodes\.num_canaries=1 .*runs=1"):
        validate_stage(stage(num_canaries=1, runs=1), ring(), "gcn")
    validate_stage(stage(num_canaries=1, runs=4), ring(), "gcn")  # four single-canary runs are enough


@pytest.mark.parametrize("twins", [True, False])
def test_canary_graphs(twins):
    """Training graph: real part unchanged, included canaries trained with their ties, excluded ones isolated
    and in no split; twins always trained; the query graph holds every tie."""
    data = ring()
    n, m = data.num_nodes, 20
    s = Settings(num_canaries=m, degree=3, high_degree=8, high_degree_share=0.25, feature_scale=40.0,
                 twins=twins, runs=1)
    train, query, include = draw_canaries(data, s, torch.Generator().manual_seed(3))
    copies = 2 if twins else 1
    assert train.num_nodes == query.num_nodes == n + copies * m and 0 < int(include.sum()) < m
    assert torch.equal(train.x[:n], data.x) and torch.equal(train.y[:n], data.y)
    assert torch.equal(train.train_mask[:n], data.train_mask)
    real = (train.edge_index < n).all(0)
    assert real.sum() == data.edge_index.size(1)
    # canary ties: distinct real nodes, degree 3 or 8 (a quarter of them 8), in both graphs for included ones
    deg_query = degree(query.edge_index[0], query.num_nodes)[n:n + m]
    assert sorted(deg_query.long().tolist()).count(8) == 5 and set(deg_query.long().tolist()) == {3, 8}
    deg_train = degree(train.edge_index[0], train.num_nodes)[n:n + m]
    assert torch.equal(deg_train[include], deg_query[include]) and (deg_train[~include] == 0).all()
    assert torch.equal(train.train_mask[n:n + m], include)
    for key in ("val_mask", "test_mask"):
        assert not train[key][n:].any()
    canary_ends = query.edge_index[:, query.edge_index[0] >= n]
    assert (canary_ends[1] < n).all()  # canaries tie only to real nodes
    far = (train.x[n:n + m] - data.x.mean(0)) / data.x.std(0)
    assert torch.allclose(far.norm(dim=1), torch.full((m,), 40.0), rtol=1e-3)
    if twins:
        assert torch.equal(train.x[n + m:], train.x[n:n + m]) and (train.y[n + m:] != train.y[n:n + m]).all()
        assert train.train_mask[n + m:].all()
        assert torch.equal(degree(train.edge_index[0], train.num_nodes)[n + m:], deg_query)


def test_headline_relation_names_the_audit():
    """`eps_lower_relation` is "node" for the node canary audit, "edge" for the edge audits."""
    node = {"attack_canary_nodes_eps_lower": 1.5, "attack_canary_nodes_eps_lower_basis": "dependent",
            "attack_canary_nodes_eps_lower_trials": "t"}
    assert headline_bound(node)["eps_lower_relation"] == "node"
    edge = {**node, "attack_canary_eps_lower": 0.5, "attack_canary_eps_lower_basis": "dependent",
            "attack_canary_eps_lower_trials": "t"}
    assert headline_bound(edge)["eps_lower_relation"] == "edge" and headline_bound(edge)["eps_lower"] == 0.5


@pytest.mark.slow
def test_non_private_model_leaks_membership(tmp_path):
    """A non-private GCN: a clearly positive node-level bound from the pooled canaries."""
    m = run_experiment(compose_run([*SMALL]), tmp_path)
    assert m["eps_lower_attack"] == "canary_nodes" and m["eps_lower_relation"] == "node"
    assert m["attack_canary_nodes_canaries"] == 500 and m["eps_lower_basis"] == "dependent"
    assert m["attack_canary_nodes_auroc"] > 0.65
    assert m["eps_lower"] > 0.3


def claims_epsilon(monkeypatch, epsilon: float) -> None:
    """A broken mechanism: ordinary training without any noise that reports node-level (epsilon, 1e-5)-DP."""
    train = NonPrivate.train

    def broken(self, data, model_cfg, train_cfg, seed):
        out = train(self, data, model_cfg, train_cfg, seed)
        out.privacy.update(epsilon=epsilon, delta=1e-5, privacy_unit="node", mechanism="broken")
        return out
    monkeypatch.setattr(NonPrivate, "train", broken)


@pytest.mark.slow
def test_noiseless_mechanism_claiming_epsilon_is_caught(tmp_path, monkeypatch):
    """Training without noise that claims epsilon 0.25: the audit's bound exceeds the claim."""
    claims_epsilon(monkeypatch, 0.25)
    m = run_experiment(compose_run([*SMALL]), tmp_path)
    assert m["attack_canary_nodes_target_epsilon"] == 0.25
    assert m["eps_lower"] > 0.25


@pytest.mark.slow
def test_gap_ndp_at_small_epsilon_stays_below_it(tmp_path):
    """GAP-NDP at epsilon 1 (its noise on): the bound stays at most the epsilon it reports."""
    m = run_experiment(compose_run([*SMALL, "privacy=gap_ndp", "privacy.epsilon=1"]), tmp_path)
    assert 0.0 <= m["eps_lower"] <= m["attack_canary_nodes_target_epsilon"] <= 1.0


def test_one_canary_per_run_is_independent(tmp_path):
    """With one canary per training run the trials are independent runs, and the basis says so."""
    m = run_experiment(compose_run([*SMALL, "model=mlp", "attack.canary_nodes.num_canaries=1",
                                    "attack.canary_nodes.runs=4"]), tmp_path)
    assert m["eps_lower_basis"] == "independent" and m["attack_canary_nodes_canaries"] == 4
    assert "one canary per training run" in m["eps_lower_trials"]


@pytest.mark.slow
@pytest.mark.parametrize("over", [
    ["privacy=dp_mlp", "model=mlp", "privacy.epsilon=1"],
    ["privacy=dpsgd_node", "model=sage", "privacy.epsilon=1"],
    ["privacy=progap_ndp", "privacy.epsilon=1"],
])
def test_node_mechanisms_at_small_epsilon_stay_below_it(over, tmp_path):
    """Every node-level mechanism at epsilon 1: the bound stays at most the epsilon it reports."""
    m = run_experiment(compose_run([*SMALL, *over]), tmp_path)
    assert m["eps_lower_relation"] == "node"
    assert 0.0 <= m["eps_lower"] <= m["attack_canary_nodes_target_epsilon"] <= 1.0 + 1e-9
