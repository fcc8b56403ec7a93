"""audit=feedback: sampling with known propensities, the loop's statistics per mode, outputs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.audit import run_stage
from gnnrisk.audit.feedback import proportional_to_size, propensities, simulate, systematic_sample, validate
from gnnrisk.data import build_dataset
from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment

pytestmark = pytest.mark.slow  # each test trains several models (minutes on 2 cores): the full suite only

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")


def _cfg(*overrides: str, model: str = "mlp") -> DictConfig:
    """The app config with audit=feedback and a small, fast loop."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["audit=feedback", "audit.learner=logistic", f"model={model}",
                                           "train.epochs=5", *overrides])
    GlobalHydra.instance().clear()
    return cfg


def test_systematic_sample_has_the_given_inclusion_probabilities() -> None:
    """Exactly sum(p) units each draw; each unit's frequency inside its 99.9% binomial interval."""
    gen = torch.Generator().manual_seed(0)
    prob = torch.tensor([1.0, 0.9, 0.5, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0])  # sums to 3
    draws = 4000
    hits = torch.stack([systematic_sample(prob, gen) for _ in range(draws)]).double()
    assert bool((hits.sum(1) == 3).all())
    freq, p = hits.mean(0).numpy(), prob.double().numpy()
    half_width = 3.3 * np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(freq - p) <= half_width + 1e-12), (freq, p)


def test_proportional_to_size_caps_and_redistributes() -> None:
    """Probabilities sum to the budget, none exceeds 1, the uncapped ones stay proportional to weight."""
    weight = torch.tensor([100.0, 50.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    prob = proportional_to_size(weight, 3)
    assert float(prob.sum()) == pytest.approx(3.0)
    assert prob[0] == 1.0 and prob[1] == 1.0
    np.testing.assert_allclose(prob[2:].numpy(), np.array([1, 2, 3, 4]) / 10)


def test_propensities_per_mode() -> None:
    """random is uniform; none/ipw mix greedy-by-score with an `explore` share of uniform."""
    scores = torch.tensor([0.9, 0.5, 0.1, 0.1], dtype=torch.float64)
    assert torch.allclose(propensities(scores, 2, "random", 0.1, 2.0), torch.full((4,), 0.5, dtype=torch.float64))
    prob = propensities(scores, 2, "ipw", 0.2, 2.0)
    assert float(prob.sum()) == pytest.approx(2.0) and bool((prob >= 0.2 * 0.5 - 1e-12).all())
    assert prob[0] > prob[1] > prob[2] and prob[2] == prob[3]


@pytest.fixture(scope="module")
def loop_runs() -> dict[str, list[tuple[float, float, float]]]:
    """Per mode and seed: (minority attention share in round 1, mean over the last 3 rounds, true share)."""
    cfg = _cfg("data.num_nodes=1500", "data.features.proxy_strength=3", "audit.rounds=7")
    out: dict[str, list[tuple[float, float, float]]] = {"none": [], "ipw": [], "random": []}
    for seed in range(3):
        data = build_dataset(cfg.data, seed)
        for mode in out:
            cfg.audit.mode = mode
            table, refs = simulate(cfg.audit, validate(cfg.audit, data), data, seed)
            share = table["attention_share_minority"]
            out[mode].append((share.iloc[0], share.iloc[-3:].mean(), refs["true_share_minority"]))
    return out


def test_uncorrected_loop_sends_attention_to_the_over_observed_group(loop_runs) -> None:
    """Equal true rates, minority over-observed: uncorrected attention to it far exceeds random's and the truth."""
    none = np.array([late for _, late, _ in loop_runs["none"]])
    rand = np.array([late for _, late, _ in loop_runs["random"]])
    truth = np.array([t for _, _, t in loop_runs["none"]])
    assert bool((none > rand).all()) and none.mean() - rand.mean() > 0.1, (none, rand)
    assert none.mean() - truth.mean() > 0.1


def test_random_allocation_sits_at_the_population_share(loop_runs) -> None:
    """3 seeds x 3 rounds x 150 attended nodes: the minority share is within 4 binomial SEs of 0.3."""
    rand = np.array([late for _, late, _ in loop_runs["random"]])
    se = np.sqrt(0.3 * 0.7 / (3 * 3 * 150))
    assert abs(rand.mean() - 0.3) < 4 * se + 0.01, rand  # + the generator's sampling of group sizes


def test_ipw_stays_closer_to_the_true_share_than_no_correction(loop_runs) -> None:
    """Inverse-propensity weighting pulls attention back to the group's share of true positives."""
    none = np.array([abs(late - t) for _, late, t in loop_runs["none"]])
    ipw = np.array([abs(late - t) for _, late, t in loop_runs["ipw"]])
    assert ipw.mean() < none.mean() - 0.05, (ipw, none)
    ipw_first = np.array([abs(first - t) for first, _, t in loop_runs["ipw"]])
    assert ipw.mean() < ipw_first.mean()  # it corrects the biased start over the rounds


def test_stage_outputs_and_reproducibility(tmp_path: Path) -> None:
    """A composed run writes feedback.csv/png and the final figures; the same seed gives the same table."""
    cfg = _cfg("data.num_nodes=300", "audit.rounds=3", "audit.mode=ipw", "audit.unit=community", "audit.budget=5")
    metrics = run_experiment(cfg, tmp_path / "a")
    run_experiment(cfg, tmp_path / "b")
    assert (tmp_path / "a" / "feedback.csv").read_text() == (tmp_path / "b" / "feedback.csv").read_text()
    assert (tmp_path / "a" / "feedback.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    for key in ("feedback_attention_share_minority_final", "feedback_auroc_true_final", "feedback_true_share_minority",
                "feedback_record_rate_majority_final", "feedback_observed_rate_minority_final"):
        assert key in saved and saved[key] == metrics[key]
    assert saved["feedback_rounds"] == 3 and saved["feedback_budget"] == 5


def test_configured_model_learner(tmp_path: Path) -> None:
    """learner=model trains the configured GNN (here a GCN) each round."""
    cfg = _cfg("data.num_nodes=200", "audit.rounds=2", "audit.learner=model", "audit.epochs=3", model="gcn")
    data = build_dataset(cfg.data, 0)
    assert cfg.audit.model.name == "gcn"
    out = run_stage(cfg.audit, data, None, tmp_path, 0)
    assert out["feedback_rounds"] == 2 and 0 <= out["feedback_attention_share_minority_final"] <= 1


@pytest.mark.parametrize("override, field", [
    ("audit.budget=301", "audit.budget"), ("audit.budget=0", "audit.budget"), ("audit.budget=-0.1", "audit.budget"),
    ("audit.budget=2.5", "audit.budget"), ("audit.rounds=0", "audit.rounds"), ("audit.mode=greedy", "audit.mode"),
    ("audit.unit=household", "audit.unit"), ("audit.learner=forest", "audit.learner"),
    ("audit.detection_attended=1.5", "audit.detection_attended"),
    ("audit.explore=0", "audit.explore"),  # with mode=ipw below
])
def test_bad_config_is_a_config_error(tmp_path: Path, override: str, field: str) -> None:
    """Each bad field raises a ConfigError that names it and says what is allowed."""
    cfg = _cfg("data.num_nodes=300", "audit.mode=ipw", override)
    data = build_dataset(cfg.data, 0)
    with pytest.raises(ConfigError, match=field) as err:
        run_stage(cfg.audit, data, None, tmp_path, 0)
    assert "expected" in str(err.value) or "needs" in str(err.value)


def test_feedback_needs_the_synthetic_population(tmp_path: Path) -> None:
    """A dataset without ground truth is refused with data.name in the message."""
    cfg = _cfg()
    data = Data(x=torch.zeros(4, 2), edge_index=torch.zeros(2, 0, dtype=torch.long), y=torch.zeros(4, dtype=torch.long))
    data.name = "citeseer"
    with pytest.raises(ConfigError, match="data.name.*data=synthetic"):
        run_stage(cfg.audit, data, None, tmp_path, 0)


def test_validate_stage_checks_before_training() -> None:
    """validate_stage (for the pipeline to call before training) raises the same ConfigError."""
    from gnnrisk.audit import validate_stage

    cfg = _cfg("data.num_nodes=300", "audit.rounds=0")
    with pytest.raises(ConfigError, match="audit.rounds"):
        validate_stage(cfg.audit, build_dataset(cfg.data, 0))
