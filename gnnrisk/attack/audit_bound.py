"""Empirical epsilon lower bounds from attack outcomes, with one-sided Clopper-Pearson bounds.

A mechanism that is (eps, delta)-DP for the neighbouring relation the trials toggle satisfies
TPR <= e^eps * FPR + delta for every attack, so eps >= ln((TPR - delta) / FPR). With n
independent trials the bound uses a lower confidence bound on TPR and an upper one on FPR
(Jagielski et al. 2020; Nasr et al. 2021). Both are one-sided Clopper-Pearson bounds at level
1 - alpha/2, so that the pair holds jointly with confidence 1 - alpha (Bonferroni).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta


def cp_lower(k: np.ndarray | int, n: np.ndarray | int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound on a binomial rate: P(rate < bound) <= alpha."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = beta.ppf(alpha, k, n - k + 1)
    return np.where(k <= 0, 0.0, np.nan_to_num(out, nan=0.0))


def cp_upper(k: np.ndarray | int, n: np.ndarray | int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound on a binomial rate: P(rate > bound) <= alpha."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = beta.ppf(1 - alpha, k + 1, n - k)
    return np.where(k >= n, 1.0, np.nan_to_num(out, nan=1.0))


def eps_from_counts(tp: np.ndarray | int, pos: np.ndarray | int, fp: np.ndarray | int,
                    neg: np.ndarray | int, delta: float = 0.0, confidence: float = 0.95) -> np.ndarray:
    """eps_lower = ln((TPR_lb - delta) / FPR_ub), 0 where the evidence shows no leakage."""
    alpha = (1 - confidence) / 2
    tpr_lb = cp_lower(tp, pos, alpha) - delta
    fpr_ub = cp_upper(fp, neg, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.log(np.where(tpr_lb > 0, tpr_lb, np.nan) / fpr_ub)
    return np.maximum(np.nan_to_num(eps, nan=0.0), 0.0)


@dataclass
class AuditResult:
    """A lower bound on epsilon and the counts it came from (on the evaluation trials)."""

    eps_lower: float
    tp: int
    positives: int
    fp: int
    negatives: int
    threshold: float | None = None

    def as_metrics(self, prefix: str) -> dict[str, float | int | None]:
        """Flat metrics.json fields under `prefix`."""
        return {f"{prefix}_eps_lower": self.eps_lower, f"{prefix}_audit_tp": self.tp,
                f"{prefix}_audit_positives": self.positives, f"{prefix}_audit_fp": self.fp,
                f"{prefix}_audit_negatives": self.negatives}


def audit_counts(tp: int, pos: int, fp: int, neg: int, delta: float = 0.0,
                 confidence: float = 0.95) -> AuditResult:
    """Bound epsilon from the counts of a fixed (data-independent) guess over independent trials."""
    eps = float(eps_from_counts(tp, pos, fp, neg, delta, confidence))
    return AuditResult(eps, int(tp), int(pos), int(fp), int(neg))


def _counts_above(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives of the guess `score >= t` for every threshold t (vectorised)."""
    pos = np.sort(scores[labels])
    neg = np.sort(scores[~labels])
    tp = pos.size - np.searchsorted(pos, thresholds, side="left")
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    return tp, fp


def audit_scores(scores: np.ndarray, labels: np.ndarray, delta: float = 0.0, confidence: float = 0.95,
                 seed: int = 0, max_thresholds: int = 256) -> AuditResult:
    """Bound epsilon from attack scores: pick the threshold on one half of the trials, bound on the other.

    The guess is `score >= threshold` means "the toggled record was in". Choosing the threshold
    on a disjoint half keeps the Clopper-Pearson bounds on the evaluation half honest.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    select = np.zeros(scores.size, dtype=bool)
    select[rng.permutation(scores.size)[: scores.size // 2]] = True
    s_sel, l_sel = scores[select], labels[select]
    candidates = np.unique(np.quantile(s_sel, np.linspace(0, 1, max_thresholds)))
    tp, fp = _counts_above(s_sel, l_sel, candidates)
    eps_sel = eps_from_counts(tp, l_sel.sum(), fp, (~l_sel).sum(), delta, confidence)
    threshold = float(candidates[int(np.argmax(eps_sel))])
    s_ev, l_ev = scores[~select], labels[~select]
    tp_ev, fp_ev = _counts_above(s_ev, l_ev, np.array([threshold]))
    result = audit_counts(int(tp_ev[0]), int(l_ev.sum()), int(fp_ev[0]), int((~l_ev).sum()), delta, confidence)
    result.threshold = threshold
    return result
