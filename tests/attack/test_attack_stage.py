"""The attack stage end to end through Hydra configs and `run_experiment`, on a small population."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gnnrisk.pipeline import run_experiment

pytestmark = pytest.mark.slow  # each test trains several models (minutes on 2 cores): the full suite only

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
SMALL = ["data.num_nodes=600", "data.num_communities=12", "train.epochs=60", "train.patience=20",
         "attack.linkteller.num_nodes=150", "attack.lsa.num_pairs=300", "attack.explain_sim.num_pairs=60",
         "attack.adjacency.num_nodes=600", "attack.canary.num_canaries=150", "model.hidden_channels=16"]
ALL = "attack=[lsa,mia,linkteller,explain_sim,canary,adjacency]"


def compose_run(overrides: list[str]):
    """Compose the app config with overrides (Hydra state cleared before and after)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
            return compose("config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def non_private(tmp_path_factory):
    """Metrics of a non-private GCN attacked by every attack."""
    return run_experiment(compose_run([ALL, *SMALL]), tmp_path_factory.mktemp("none"))


def test_every_attack_reports_its_metrics(non_private):
    """All documented headline keys are present and within their ranges."""
    m = non_private
    for key in ("attack_lsa_auroc", "attack_lsa_mlp_auroc", "attack_lsa_gain", "attack_mia_auroc",
                "attack_mia_tpr_at_1fpr", "attack_mia_tpr_at_01fpr", "attack_linkteller_auroc",
                "attack_linkteller_precision_at_k", "attack_linkteller_recall_at_k_x4", "attack_explain_sim_auroc",
                "attack_explain_sim_mlp_auroc", "eps_lower", "eps_lower_basis", "eps_lower_trials"):
        assert key in m, key
    for key in ("attack_lsa_auroc", "attack_mia_auroc", "attack_linkteller_auroc", "attack_explain_sim_auroc"):
        assert 0.0 <= m[key] <= 1.0
    assert abs(m["attack_lsa_gain"] - (m["attack_lsa_auroc"] - m["attack_lsa_mlp_auroc"])) < 1e-12


def test_non_private_model_leaks_links(non_private):
    """Without privacy LinkTeller finds the ties and both audits give a clearly positive bound."""
    assert non_private["attack_linkteller_auroc"] > 0.9
    assert non_private["attack_canary_eps_lower"] > 1.0
    assert non_private["eps_lower"] > 5.0  # the released graph is the input graph


@pytest.mark.parametrize("eps", [1.0, 4.0])
def test_edgerand_bounds_never_exceed_epsilon(eps, tmp_path):
    """Every epsilon lower bound of an EdgeRand run is at most its epsilon; LinkTeller fades at eps 1."""
    m = run_experiment(compose_run([ALL, "privacy=edgerand", f"privacy.epsilon={eps}", *SMALL]), tmp_path)
    assert m["epsilon"] == eps
    for key in ("eps_lower", "attack_adjacency_eps_lower", "attack_canary_eps_lower"):
        assert 0.0 <= m[key] <= eps, (key, m[key])
    if eps == 1.0:
        assert m["attack_linkteller_auroc"] <= 0.65


def test_gap_edp_bound_never_exceeds_epsilon(tmp_path):
    """The canary audit of GAP-EDP stays below its epsilon; the adjacency audit says GAP releases no graph."""
    m = run_experiment(compose_run(["attack=[canary,linkteller,explain_sim,adjacency]", "privacy=gap_edp",
                                    "privacy.epsilon=1", "privacy.encoder_epochs=30",
                                    *[s for s in SMALL if "lsa" not in s]]), tmp_path)
    assert m["eps_lower"] <= m["epsilon"] and m["eps_lower_attack"] == "canary"
    assert m["attack_adjacency_eps_lower"] is None and "releases no graph" in m["attack_adjacency_eps_lower_trials"]


def test_same_seed_same_numbers(tmp_path):
    """Attack metrics are reproducible for the same config and seed."""
    over = ["attack=[lsa,linkteller,mia]", *[s for s in SMALL if "explain" not in s and "canary" not in s
                                             and "adjacency" not in s]]
    a = run_experiment(compose_run(over), tmp_path / "a")
    b = run_experiment(compose_run(over), tmp_path / "b")
    keys = [k for k in a if k.startswith("attack_") and "seconds" not in k]
    assert keys and all(a[k] == b[k] for k in keys)
