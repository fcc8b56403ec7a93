"""Group fairness of risk predictions: parity gaps, per-group TPR/FPR, calibration; per-group accuracy for
multi-class tasks."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor


def expected_calibration_error(prob: np.ndarray, y: np.ndarray, bins: int = 15) -> float | None:
    """ECE with equal-width bins: sum over bins of |mean prob - positive rate| weighted by bin size."""
    if prob.size == 0:
        return None
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    count = np.bincount(idx, minlength=bins)
    conf = np.bincount(idx, weights=prob, minlength=bins)
    pos = np.bincount(idx, weights=y.astype(float), minlength=bins)
    return float(np.abs(conf - pos).sum() / prob.size)


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise num/den with NaN where den is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def _gap(values: np.ndarray) -> float | None:
    """Largest difference between groups, ignoring groups where the rate is undefined."""
    v = values[~np.isnan(values)]
    return float(v.max() - v.min()) if v.size >= 2 else None


def group_fairness(prob_pos: Tensor, y: Tensor, group: Tensor, names: Sequence[str],
                   suffix: str = "", threshold: float = 0.5) -> dict[str, float | None]:
    """Fairness metrics of predictions (positive when prob_pos >= threshold) against labels `y`.

    Returns `delta_sp` (statistical-parity gap of selection rates), `delta_eo` (equal-opportunity
    gap: TPR difference), `delta_fpr`, `ece`, and per group `selection_rate_<g>`, `tpr_<g>`,
    `fpr_<g>`, `ece_<g>`; with more than two groups a gap is max minus min. `suffix` is appended
    to every key (e.g. "_true" for metrics against the ground truth).
    """
    p = prob_pos.detach().cpu().double().numpy()
    t = y.detach().cpu().numpy().astype(np.int64)
    g = group.detach().cpu().numpy().astype(np.int64)
    pred = (p >= threshold).astype(np.int64)
    k = len(names)
    size = np.bincount(g, minlength=k)
    selected = np.bincount(g, weights=pred, minlength=k)
    pos = np.bincount(g, weights=t, minlength=k)
    tp = np.bincount(g, weights=pred * t, minlength=k)
    fp = np.bincount(g, weights=pred * (1 - t), minlength=k)
    sel, tpr, fpr = _rate(selected, size), _rate(tp, pos), _rate(fp, size - pos)
    out: dict[str, float | None] = {
        "delta_sp": _gap(sel), "delta_eo": _gap(tpr), "delta_fpr": _gap(fpr),
        "ece": expected_calibration_error(p, t),
    }
    for i, name in enumerate(names):
        m = g == i
        out[f"selection_rate_{name}"] = None if np.isnan(sel[i]) else float(sel[i])
        out[f"tpr_{name}"] = None if np.isnan(tpr[i]) else float(tpr[i])
        out[f"fpr_{name}"] = None if np.isnan(fpr[i]) else float(fpr[i])
        out[f"ece_{name}"] = expected_calibration_error(p[m], t[m])
    return {f"{key}{suffix}": value for key, value in out.items()}


def group_accuracy(prob: Tensor, y: Tensor, group: Tensor, names: Sequence[str]) -> dict[str, float | None]:
    """Multi-class predictions (argmax of `prob` [N, C]): `acc_<g>` per group and `acc_gap`, max minus min."""
    hit = (prob.argmax(1) == y).detach().cpu().double().numpy()
    g = group.detach().cpu().numpy().astype(np.int64)
    k = len(names)
    acc = _rate(np.bincount(g, weights=hit, minlength=k), np.bincount(g, minlength=k).astype(float))
    return {"acc_gap": _gap(acc), **{f"acc_{name}": None if np.isnan(acc[i]) else float(acc[i])
                                     for i, name in enumerate(names)}}
