"""Utility and fairness metrics against hand-computed values and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from gnnrisk.audit.group_metrics import expected_calibration_error, group_accuracy, group_fairness
from gnnrisk.train.metrics import classification_metrics


def test_binary_metrics():
    p1 = torch.tensor([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    y = torch.tensor([1, 1, 1, 0, 0, 0])
    m = classification_metrics(torch.stack([1 - p1, p1], 1), y)
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p1))
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))


def test_multiclass_metrics_and_missing_class():
    prob = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    y = torch.tensor([0, 1, 1, 0])  # class 2 absent: macro averages over present classes
    m = classification_metrics(prob, y)
    assert m["acc"] == pytest.approx(0.75)
    expected = np.mean([roc_auc_score(y == 0, prob[:, 0]), roc_auc_score(y == 1, prob[:, 1])])
    assert m["auroc"] == pytest.approx(expected)


def test_single_class_subset_gives_none():
    p1 = torch.tensor([0.2, 0.7])
    assert classification_metrics(torch.stack([1 - p1, p1], 1), torch.tensor([1, 1]))["auroc"] is None


def test_group_fairness_by_hand():
    # group 0: preds 1,1,0,0 labels 1,0,1,0 -> sel .5, tpr .5, fpr .5
    # group 1: preds 1,0,0,0 labels 1,1,0,0 -> sel .25, tpr .5, fpr 0
    prob = torch.tensor([0.9, 0.7, 0.2, 0.1, 0.8, 0.4, 0.3, 0.1])
    y = torch.tensor([1, 0, 1, 0, 1, 1, 0, 0])
    group = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    m = group_fairness(prob, y, group, ["a", "b"], suffix="_true")
    assert m["selection_rate_a_true"] == 0.5 and m["selection_rate_b_true"] == 0.25
    assert m["delta_sp_true"] == pytest.approx(0.25)
    assert m["delta_eo_true"] == pytest.approx(0.0)
    assert m["delta_fpr_true"] == pytest.approx(0.5)


def test_ece_of_calibrated_and_overconfident_scores():
    rng = np.random.default_rng(0)
    p = rng.random(200000)
    y = rng.random(200000) < p
    assert expected_calibration_error(p, y) < 0.01
    assert expected_calibration_error(np.where(p > 0.5, 0.99, 0.01), y) > 0.2


def test_flagging_budget_threshold():
    from gnnrisk.pipeline import decision_threshold

    scores = torch.linspace(0, 1, 101)
    assert decision_threshold(scores, None) == 0.5
    t = decision_threshold(scores, 0.2)
    assert (scores >= t).float().mean().item() == pytest.approx(0.2, abs=0.011)


def test_result_files_follow_the_umask(tmp_path):
    """Atomic writes are readable by others as any file the user writes (mkstemp alone gives 0600)."""
    import os
    import stat

    from gnnrisk.utils.files import write_json_atomic

    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_group_accuracy_by_hand():
    """Three classes, two groups: group a gets 2 of 3 right, group b 1 of 2; an empty group is None."""
    prob = torch.tensor([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.6, .3, .1], [.2, .2, .6]])
    y = torch.tensor([0, 1, 0, 1, 2])
    group = torch.tensor([0, 0, 0, 1, 1])
    out = group_accuracy(prob, y, group, ["a", "b", "c"])
    assert out["acc_a"] == pytest.approx(2 / 3) and out["acc_b"] == pytest.approx(0.5) and out["acc_c"] is None
    assert out["acc_gap"] == pytest.approx(2 / 3 - 0.5)
