"""What a private run writes outside its budget: kept apart in diagnostics/, labelled, and switchable off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment
from gnnrisk.results import DIAGNOSTICS_DIR, DIAGNOSTICS_LABEL, HISTORY_FILE, outside_budget

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
TINY = ["data.num_nodes=300", "train.epochs=3", "device=cpu", "model.hidden_channels=8"]


def _run(tmp_path: Path, name: str, *overrides: str) -> tuple[Path, dict]:
    """Run one tiny experiment in-process; return its folder and metrics."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, *overrides])
    run_dir = tmp_path / name
    return run_dir, run_experiment(cfg, run_dir)


@pytest.mark.parametrize("overrides,covers", [
    (["privacy=dp_mlp", "model=mlp", "privacy.epochs=2", "privacy.batch_size=64"], "model"),
    (["privacy=gap_ndp", "privacy.encoder_epochs=1", "privacy.epochs=1"], "model"),
])
def test_node_level_curve_goes_to_labelled_diagnostics(tmp_path: Path, overrides: list[str], covers: str) -> None:
    """Node-level DP: no history.csv at the top; diagnostics/history.csv beside a NOT_COVERED label."""
    run_dir, metrics = _run(tmp_path, "node", *overrides)
    assert not (run_dir / HISTORY_FILE).exists()
    assert (run_dir / DIAGNOSTICS_DIR / HISTORY_FILE).exists()
    label = (run_dir / DIAGNOSTICS_DIR / DIAGNOSTICS_LABEL).read_text()
    assert label.startswith("NOT COVERED BY THE RUN'S EPSILON") and metrics["mechanism"] in label
    assert metrics["history_file"] == f"{DIAGNOSTICS_DIR}/{HISTORY_FILE}"
    assert metrics["diagnostics_outside_epsilon"] == DIAGNOSTICS_DIR and metrics["epsilon_covers"] == covers
    assert json.loads((run_dir / "metrics.json").read_text())["history_file"] == metrics["history_file"]
    # signal against noise: the released-gradient estimate is covered; clipping shares read private gradients
    outside = json.loads((run_dir / DIAGNOSTICS_DIR / "diagnostics.json").read_text())
    assert any(k.endswith("_grad_snr") for k in metrics) and any(k.endswith("_drowned") for k in metrics)
    assert any(k.endswith("_clipped_share") for k in outside)
    assert not any(k.endswith(("_clipped_share", "_exact")) for k in metrics)


def test_diagnostics_switched_off_leaves_nothing(tmp_path: Path) -> None:
    """privacy.diagnostics=false: neither the curve nor the diagnostics folder is written."""
    run_dir, metrics = _run(tmp_path, "off", "privacy=dp_mlp", "model=mlp", "privacy.epochs=2",
                            "privacy.batch_size=64", "privacy.diagnostics=false")
    assert not (run_dir / HISTORY_FILE).exists() and not (run_dir / DIAGNOSTICS_DIR).exists()
    assert metrics["history_file"] is None


@pytest.mark.parametrize("overrides,covers", [(["privacy=edgerand", "privacy.epsilon=4"], "graph"),
                                              (["privacy=none"], None)])
def test_covered_or_public_curve_stays_in_history(tmp_path: Path, overrides: list[str], covers: str | None) -> None:
    """Edge-level DP (the curve is post-processing of the released graph) and non-private runs keep history.csv."""
    run_dir, metrics = _run(tmp_path, "edge", *overrides)
    assert (run_dir / HISTORY_FILE).exists() and not (run_dir / DIAGNOSTICS_DIR).exists()
    assert metrics["history_file"] == HISTORY_FILE and metrics["diagnostics_outside_epsilon"] is None
    assert metrics["epsilon_covers"] == covers


def test_rule_per_privacy_unit() -> None:
    """Only a private node-level run's training records are outside its budget (GAP at epsilon inf is not private)."""
    assert outside_budget({"privacy_unit": "node", "epsilon": 4.0})
    assert not outside_budget({"privacy_unit": "node", "epsilon": None})
    assert not outside_budget({"privacy_unit": "edge", "epsilon": 1.0})
    assert not outside_budget({"privacy_unit": None, "epsilon": None})


def test_bad_switch_is_refused_before_training(tmp_path: Path) -> None:
    """A non-boolean privacy.diagnostics is a one-line ConfigError."""
    with pytest.raises(ConfigError, match="privacy.diagnostics"):
        _run(tmp_path, "bad", "privacy=dp_mlp", "model=mlp", "privacy.diagnostics=maybe")
    assert not (tmp_path / "bad" / "metrics.json").exists()
