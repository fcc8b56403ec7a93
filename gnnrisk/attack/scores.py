"""Attack scoring: AUROC and TPR at a fixed low false-positive rate."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

# Low false-positive rates reported for every attack, and their metric-name suffixes.
LOW_FPRS = {"1fpr": 0.01, "01fpr": 0.001}


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of `scores` (higher = more likely positive)."""
    return float(roc_auc_score(labels, scores))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Highest true-positive rate the attack reaches with a false-positive rate at most `fpr`."""
    fprs, tprs, _ = roc_curve(labels, scores)
    return float(tprs[fprs <= fpr].max())


def roc_metrics(prefix: str, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """`<prefix>_auroc` and `<prefix>_tpr_at_1fpr`, `<prefix>_tpr_at_01fpr` (1% and 0.1% FPR)."""
    out = {f"{prefix}_auroc": auroc(labels, scores)}
    for suffix, fpr in LOW_FPRS.items():
        out[f"{prefix}_tpr_at_{suffix}"] = tpr_at_fpr(labels, scores, fpr)
    return out
