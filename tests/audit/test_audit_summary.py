"""Aggregation of audit sweeps: means and unbiased stds over seeds from run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gnnrisk.audit.summary import load_feedback, load_fairness, summarise_fairness, summarise_feedback
from gnnrisk.errors import DataError


def _feedback_run(root: Path, seed: int, shares: list[float]) -> None:
    """A finished feedback run folder with the given minority attention shares per round."""
    run = root / f"seed={seed}"
    run.mkdir(parents=True)
    rows = [{"round": r + 1, "mode": "none", "attention_share_minority": s, "record_rate_majority": 0.1,
             "record_rate_minority": 0.2 + s, "auroc_true": 0.6} for r, s in enumerate(shares)]
    pd.DataFrame(rows).to_csv(run / "feedback.csv", index=False)
    (run / "metrics.json").write_text(json.dumps({"seed": seed, "feedback_true_share_minority": 0.3}))


def test_feedback_summary_mean_and_std(tmp_path: Path) -> None:
    """Two seeds: mean and ddof=1 std per round; the record ratio is per run, then averaged."""
    _feedback_run(tmp_path, 0, [0.4, 0.6])
    _feedback_run(tmp_path, 1, [0.6, 0.8])
    summary = summarise_feedback(load_feedback(tmp_path)).set_index("round")
    assert summary.loc[2, "attention_share_minority_mean"] == pytest.approx(0.7)
    assert summary.loc[2, "attention_share_minority_std"] == pytest.approx(0.1414213, rel=1e-5)
    assert summary.loc[1, "record_ratio_minority_mean"] == pytest.approx(((0.6 / 0.1) + (0.8 / 0.1)) / 2)
    assert summary.loc[1, "true_share_minority_mean"] == pytest.approx(0.3)


def test_fairness_summary_groups_by_mechanism_and_epsilon(tmp_path: Path) -> None:
    """Per mechanism/epsilon means; privacy=none runs are one row whatever epsilon they were given."""
    for i, (mech, eps, seed, auroc) in enumerate([("dp_mlp", 1, 0, 0.5), ("dp_mlp", 1, 1, 0.7),
                                                   ("none", 1, 0, 0.8), ("none", 8, 0, 0.8)]):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / "config.yaml").write_text(f"privacy:\n  name: {mech}\n  epsilon: {eps}\n")
        (run / "metrics.json").write_text(json.dumps({
            "model": "mlp", "mechanism": mech, "seed": seed, "epsilon": eps, "test_auroc_true": auroc,
            "auroc_a_true": auroc, "auroc_b_true": auroc - 0.1}))
    table = summarise_fairness(load_fairness(tmp_path), ["a", "b"])
    assert table.loc[("mlp", "dp_mlp", 1.0), ("test_auroc_true", "mean")] == pytest.approx(0.6)
    assert table.loc[("mlp", "dp_mlp", 1.0), ("auroc_gap_true", "mean")] == pytest.approx(0.1)
    assert table.loc[("mlp", "none", float("inf")), ("seeds", "n")] == 1


def test_empty_sweep_is_a_data_error(tmp_path: Path) -> None:
    """A folder without finished runs says so."""
    with pytest.raises(DataError, match="no finished run"):
        load_feedback(tmp_path)
