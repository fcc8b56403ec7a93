"""The explain stage end to end: metrics.json keys, output files, reproducibility, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gnnrisk.errors import ConfigError
from gnnrisk.explain import algorithms
from gnnrisk.explain.algorithms import build_explainer
from gnnrisk.explain.nodes import select_nodes
from gnnrisk.models import FeatureMLP
from gnnrisk.pipeline import run_experiment

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
SMALL = ["data.num_nodes=400", "data.num_communities=8", "train.epochs=40", "explain.num_nodes=8", "explain.split=all",
         "explain.classes=[0,1]"]
KEYS = ("explain_auroc", "explain_precision_at_k", "explain_fidelity_plus_label", "explain_fidelity_minus_label",
        "explain_fidelity_plus_prob", "explain_fidelity_minus_prob", "explain_characterization", "explain_sparsity",
        "explain_seconds_per_node", "explain_num_nodes", "explain_algorithm")


def make_cfg(*overrides: str):
    """Compose the app config with overrides."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("name", ["saliency", "gnnexplainer", "random",
                                  pytest.param("pgexplainer", marks=pytest.mark.slow),
                                  pytest.param("graphmask", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_stage_writes_metrics_and_files(tmp_path, name):
    extra = ["explain.epochs=5", "explain.train_nodes=5"] if name == "pgexplainer" else (
        ["explain.epochs=5"] if name in ("gnnexplainer", "graphmask") else [])
    metrics = run_experiment(make_cfg(f"explain={name}", *SMALL, *extra), tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for key in KEYS:
        assert key in on_disk, key
    assert on_disk["explain_algorithm"] == name and on_disk["explain_num_nodes"] == 8
    assert metrics["explain_auroc"] is None or 0.0 <= metrics["explain_auroc"] <= 1.0
    assert 0.0 <= metrics["explain_sparsity"] < 1.0
    archive = np.load(tmp_path / "explanations.npz")
    assert archive["node_ids"].size == 8 and archive["offsets"][-1] == archive["edge_mask"].size
    assert archive["truth"].dtype == bool and archive["edge_ids"].size == archive["edge_mask"].size
    png = (tmp_path / "explanation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.slow
def test_same_seed_same_explanations(tmp_path):
    cfg = make_cfg("explain=gnnexplainer", "explain.epochs=10", *SMALL)
    first = run_experiment(cfg, tmp_path / "a")
    second = run_experiment(cfg, tmp_path / "b")
    keys = [k for k in KEYS if k != "explain_seconds_per_node"]
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "explanations.npz")["edge_mask"],
                                  np.load(tmp_path / "b" / "explanations.npz")["edge_mask"])


@pytest.mark.slow
def test_explicit_node_list_and_count(tmp_path):
    metrics = run_experiment(make_cfg("explain=saliency", *SMALL, "explain.nodes=3"), tmp_path / "count")
    assert metrics["explain_num_nodes"] == 3
    ids = np.load(tmp_path / "count" / "explanations.npz")["node_ids"].tolist()
    run_experiment(make_cfg("explain=saliency", *SMALL, f"explain.nodes=[{ids[1]},{ids[0]}]"), tmp_path / "list")
    assert np.load(tmp_path / "list" / "explanations.npz")["node_ids"].tolist() == sorted(ids[:2])


@pytest.mark.slow
def test_attention_needs_a_gat(tmp_path):
    with pytest.raises(ConfigError, match="model=gat"):
        run_experiment(make_cfg("explain=attention", *SMALL), tmp_path)
    metrics = run_experiment(make_cfg("explain=attention", "model=gat", *SMALL), tmp_path / "gat")
    assert metrics["explain_algorithm"] == "attention"


def test_model_without_message_passing_is_refused():
    cfg = OmegaConf.create({"name": "saliency"})
    with pytest.raises(ConfigError, match="no message-passing"):
        build_explainer(cfg, FeatureMLP(4, 8, 2, 2, 0.0))


def test_pgexplainer_on_an_unsupported_task_names_alternatives(monkeypatch):
    # PyG's PGExplainer refuses model-type explanations; the refusal must come back as a ConfigError.
    monkeypatch.setattr(algorithms, "PHENOMENON", ())
    from torch_geometric.nn.models import GCN
    model = GCN(in_channels=4, hidden_channels=8, num_layers=2, out_channels=2)
    with pytest.raises(ConfigError, match="gnnexplainer"):
        build_explainer(OmegaConf.create({"name": "pgexplainer", "epochs": 1, "lr": 0.01}), model)


def test_no_node_to_explain_and_bad_ids(tmp_path):
    cfg = make_cfg("explain=saliency", "data.num_nodes=400", "data.num_communities=8")  # default: positives only
    from gnnrisk.data import build_dataset
    data = build_dataset(cfg.data, 0)
    all_negative = torch.tensor([[0.9, 0.1]]).repeat(data.num_nodes, 1)
    with pytest.raises(ConfigError, match="no node to explain"):
        select_nodes(cfg.explain, data, all_negative, 0)
    bad = OmegaConf.merge(cfg.explain, {"nodes": [0, data.num_nodes + 5]})
    with pytest.raises(ConfigError, match="explain.nodes"):
        select_nodes(bad, data, all_negative, 0)
    with pytest.raises(ConfigError, match="explain.name"):
        run_experiment(make_cfg("explain=saliency", *SMALL, "explain.name=lime"), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["gap_edp", "gap_ndp"])
def test_gap_is_explained_with_its_training_noise(tmp_path, mechanism):
    # GAP answers from cached aggregations; its explain view re-aggregates with the same noise draws,
    # so it reproduces the released outputs exactly and masks on the true edges change them.
    from gnnrisk.data import build_dataset
    from gnnrisk.privacy import build_mechanism
    cfg = make_cfg("explain=saliency", f"privacy={mechanism}", "privacy.epsilon=2", "privacy.encoder_epochs=5",
                   *SMALL)
    data = build_dataset(cfg.data, 0)
    trained = build_mechanism(cfg.privacy).train(data, cfg.model, cfg.train, 0)
    model, graph = trained.explainable()
    with torch.no_grad():
        torch.testing.assert_close(model(graph.x, graph.edge_index), trained.model(data.x), rtol=1e-4, atol=1e-5)
    from gnnrisk.explain import run_stage
    metrics = run_stage(cfg.explain, data, trained, tmp_path, 0)
    assert metrics["explain_num_hops"] == int(cfg.privacy.hops) and metrics["explain_num_nodes"] == 8
    assert np.load(tmp_path / "explanations.npz")["edge_mask"].max() > 0


@pytest.mark.slow
def test_gap_is_explained_by_graphmask(tmp_path):
    metrics = run_experiment(make_cfg("explain=graphmask", "explain.epochs=3", "privacy=gap_edp",
                                      "privacy.encoder_epochs=5", *SMALL), tmp_path)
    assert metrics["explain_num_nodes"] == 8


def test_mlp_cannot_be_explained_link_by_link(tmp_path):
    with pytest.raises(ConfigError, match="no message-passing"):
        run_experiment(make_cfg("explain=saliency", "model=mlp", *SMALL), tmp_path)
