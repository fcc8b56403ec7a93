"""Utility metrics of node predictions: accuracy, AUROC, AUPRC, F1 (binary or macro multi-class)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from torch import Tensor


def _safe(metric, *args, **kwargs) -> float | None:
    """A metric that is undefined on this subset (one class only) is reported as None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(metric(*args, **kwargs))
    except ValueError:
        return None
    return None if math.isnan(value) else value


def classification_metrics(prob: Tensor, y: Tensor) -> dict[str, float | None]:
    """Accuracy, AUROC, AUPRC and F1 of class probabilities `prob` [n, C] against labels `y` [n].

    Binary tasks score the positive class; multi-class tasks use macro one-vs-rest averages
    over the classes present in `y`.
    """
    p = prob.detach().cpu().double().numpy()
    t = y.detach().cpu().numpy()
    pred = p.argmax(1)
    out: dict[str, float | None] = {"acc": float((pred == t).mean()) if t.size else None}
    if p.shape[1] == 2:
        out["auroc"] = _safe(roc_auc_score, t, p[:, 1])
        out["auprc"] = _safe(average_precision_score, t, p[:, 1])
        out["f1"] = _safe(f1_score, t, pred, zero_division=0)
        return out
    present = np.unique(t)
    onehot = t[:, None] == present[None, :]
    aurocs = [_safe(roc_auc_score, onehot[:, i], p[:, c]) for i, c in enumerate(present)]
    aps = [_safe(average_precision_score, onehot[:, i], p[:, c]) for i, c in enumerate(present)]
    aurocs, aps = [a for a in aurocs if a is not None], [a for a in aps if a is not None]
    out["auroc"] = float(np.mean(aurocs)) if aurocs else None
    out["auprc"] = float(np.mean(aps)) if aps else None
    out["f1"] = _safe(f1_score, t, pred, average="macro", labels=present, zero_division=0)
    return out
