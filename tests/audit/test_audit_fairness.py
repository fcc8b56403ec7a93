"""audit=fairness: hand-computed per-group metrics, bias amplification, plot, config errors, pipeline run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch_geometric.data import Data

from gnnrisk.audit import run_stage
from gnnrisk.audit.fairness import bias_amplification, fairness_audit
from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")


def _data(prob_pos: list[float], y: list[int], y_true: list[int], group: list[int]) -> tuple[torch.Tensor, Data]:
    """A tiny population, every node in the test split, and its class probabilities."""
    n = len(y)
    data = Data(y=torch.tensor(y), y_true=torch.tensor(y_true), group=torch.tensor(group), num_nodes=n,
                test_mask=torch.ones(n, dtype=torch.bool))
    data.group_names, data.name = ["a", "b"], "toy"
    p = torch.tensor(prob_pos, dtype=torch.float64)
    return torch.stack([1 - p, p], 1), data


def test_hand_computed_example() -> None:
    """Base rates, detection, mean scores, per-group AUROC and amplification match a hand computation."""
    # group a: nodes 0-3, group b: nodes 4-7
    prob, data = _data(prob_pos=[0.9, 0.2, 0.6, 0.1, 0.8, 0.7, 0.3, 0.4],
                       y=[1, 0, 0, 0, 1, 1, 0, 0], y_true=[1, 1, 0, 0, 1, 1, 0, 0],
                       group=[0, 0, 0, 0, 1, 1, 1, 1])
    out = fairness_audit(prob, data, "test")
    assert out["base_rate_a"] == 0.25 and out["base_rate_b"] == 0.5 and out["base_rate_gap"] == 0.25
    assert out["base_rate_a_true"] == 0.5 and out["base_rate_b_true"] == 0.5 and out["base_rate_gap_true"] == 0
    assert out["detection_rate_a"] == 0.5 and out["detection_rate_b"] == 1.0
    assert out["mean_score_a"] == pytest.approx(0.45) and out["mean_score_b"] == pytest.approx(0.55)
    # selection (p >= 0.5): a selects {0, 2} = 0.5, b selects {4, 5} = 0.5
    assert out["bias_amplification_true"] == pytest.approx((0.5 - 0.5) - (0.5 - 0.5))
    assert out["bias_amplification"] == pytest.approx(0.0 - 0.25)  # the record's gap is 0.25, the model's 0
    assert out["record_bias"] == pytest.approx(0.25) and out["record_bias_b"] == pytest.approx(0.25)
    assert out["score_amplification_true"] == pytest.approx(0.10)
    # group a vs y_true: positives {0: .9, 1: .2}, negatives {2: .6, 3: .1}: 3 of 4 pairs ordered
    assert out["auroc_a_true"] == pytest.approx(0.75)
    assert out["acc_a_true"] == pytest.approx(0.5)  # predictions 1,0,1,0 vs 1,1,0,0
    assert out["auroc_b_true"] == 1.0 and out["acc_b_true"] == 1.0


@pytest.mark.parametrize("selected_b, expected", [(0.75, 0.5), (0.25, 0.0), (0.0, -0.25)])
def test_bias_amplification_sign_and_size(selected_b: float, expected: float) -> None:
    """True rates 0.5 (a) vs 0.75 (b); the model selects a at 0.25: amplification = model gap - true gap."""
    n = 400
    g = np.repeat([0, 1], n)
    y_true = np.concatenate([np.arange(n) < n * 0.5, np.arange(n) < n * 0.75]).astype(int)
    sel = np.concatenate([np.arange(n) < n * 0.25, np.arange(n) < n * (0.25 + selected_b)]).astype(float)
    prob, data = _data(list(sel * 0.9 + 0.05), list(y_true), list(y_true), list(g))
    out = fairness_audit(prob, data, "test")
    assert out["bias_amplification_true"] == pytest.approx(selected_b - 0.25)
    assert out["bias_amplification_true"] == pytest.approx(expected)
    np.testing.assert_allclose(bias_amplification(np.array([0.25, 0.25 + selected_b]), np.array([0.5, 0.75])),
                               [0.0, expected])


class _Released:
    """A stand-in for TrainedModel: only predict_proba() is used by the audit."""

    def __init__(self, prob: torch.Tensor):
        self.prob = prob

    def predict_proba(self) -> torch.Tensor:
        """The released probabilities."""
        return self.prob


def test_run_stage_writes_reliability_plot(tmp_path: Path) -> None:
    """run_stage dispatches to the fairness audit and writes reliability.png."""
    prob, data = _data([0.9, 0.2, 0.6, 0.1, 0.8, 0.7, 0.3, 0.4], [1, 0, 0, 0, 1, 1, 0, 0],
                       [1, 1, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1])
    cfg = OmegaConf.create({"name": "fairness", "split": "test", "reliability_bins": 5})
    out = run_stage(cfg, data, _Released(prob.float()), tmp_path, 0)
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    assert out["reliability_plot"] == "reliability.png" and "auroc_b_true" in out


@pytest.mark.parametrize("field, value", [("split", "holdout"), ("reliability_bins", 1), ("name", "fair")])
def test_config_errors(tmp_path: Path, field: str, value: object) -> None:
    """A bad audit field is a ConfigError naming it."""
    prob, data = _data([0.9, 0.2], [1, 0], [1, 0], [0, 1])
    cfg = OmegaConf.create({"name": "fairness", "split": "test", "reliability_bins": 10, field: value})
    with pytest.raises(ConfigError, match=f"audit.{field}"):
        run_stage(cfg, data, _Released(prob.float()), tmp_path, 0)


@pytest.mark.parametrize("privacy", ["privacy=none", "privacy=dp_mlp privacy.batch_size=64"])
def test_pipeline_run_with_privacy(tmp_path: Path, privacy: str) -> None:
    """A Hydra-composed run with audit=fairness (also under a privacy mechanism) writes the audit keys."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["audit=fairness", *privacy.split(), "data.num_nodes=300",
                                           "train.epochs=5", "model=mlp"])
    GlobalHydra.instance().clear()
    run_experiment(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("base_rate_minority_true", "auroc_minority_true", "acc_majority", "detection_rate_minority",
                "bias_amplification_true", "score_amplification_true", "record_bias", "delta_sp"):
        assert key in metrics
    assert metrics["detection_rate_minority"] > metrics["detection_rate_majority"]  # 0.9 vs 0.5 by default
    assert (tmp_path / "reliability.png").exists()


def test_reliability_bin_counts_match_calibration_curve() -> None:
    """The counts under the diagram are the nodes behind each of calibration_curve's points (edges included)."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    from gnnrisk.audit.reliability_plot import bin_counts

    rng = np.random.default_rng(0)
    p = np.concatenate([rng.random(997), [0.0, 0.2, 1.0]])  # bin edges land where sklearn puts them
    y = (rng.random(p.size) < p).astype(int)
    counts = bin_counts(p, 5)
    assert counts.sum() == p.size
    frac, mean_pred = calibration_curve(y, p, n_bins=5, strategy="uniform")
    edges = np.linspace(0, 1, 6)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, 4)
    for b in range(5):  # each bin's mean prediction and positive share from the counted members
        members = index == b
        assert members.sum() == counts[b]
        assert mean_pred[b] == pytest.approx(p[members].mean()) and frac[b] == pytest.approx(y[members].mean())
