"""audit=fairness: per-group base rates, utility and bias amplification, against the record and the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.audit.reliability_plot import plot_reliability
from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.privacy import TrainedModel
from gnnrisk.train.metrics import classification_metrics

SPLITS = ("test", "val", "train", "all")
RELIABILITY_FILE = "reliability.png"


def group_names(data: Data) -> list[str]:
    """The names of the protected groups of `data`, in index order."""
    names = getattr(data, "group_names", None)
    return list(names) if names else [str(g) for g in range(int(data.group.max()) + 1)]


def split_mask(data: Data, split: str) -> Tensor:
    """Boolean mask of the nodes an audit is computed on."""
    if split == "all":
        return torch.ones(data.num_nodes, dtype=torch.bool)
    return getattr(data, f"{split}_mask").cpu()


def base_rates(y: Tensor, group: Tensor, k: int) -> np.ndarray:
    """Positive rate of the labels `y` in each of the `k` groups (NaN for an empty group)."""
    g = group.numpy()
    size = np.bincount(g, minlength=k).astype(float)
    pos = np.bincount(g, weights=y.numpy().astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pos / size


def signed_gaps(rates: np.ndarray) -> np.ndarray:
    """Each group's rate minus the reference group's (the first group): the direction of a disparity."""
    return rates - rates[0]


def bias_amplification(selection: np.ndarray, true_rate: np.ndarray) -> np.ndarray:
    """Per group: (selection-rate gap to the reference group) - (true base-rate gap to it).

    0 means the model's disparity equals the disparity of the true outcome; a positive value means
    the model selects the group more, relative to the reference group, than the truth warrants.
    """
    return signed_gaps(selection) - signed_gaps(true_rate)


def _headline(values: np.ndarray) -> float | None:
    """The non-reference group value with the largest magnitude (the only one with two groups), signed."""
    rest = values[1:]
    rest = rest[~np.isnan(rest)]
    return None if rest.size == 0 else float(rest[np.argmax(np.abs(rest))])


def _num(value: float) -> float | None:
    """A float for metrics.json, None when undefined."""
    return None if np.isnan(value) else float(value)


def per_group_utility(prob: Tensor, y: Tensor, group: Tensor, names: Sequence[str],
                      suffix: str) -> dict[str, float | None]:
    """Accuracy and AUROC within each group (`acc_<g><suffix>`, `auroc_<g><suffix>`)."""
    out: dict[str, float | None] = {}
    for i, name in enumerate(names):  # a loop over groups, not nodes
        m = group == i
        scores = classification_metrics(prob[m], y[m]) if bool(m.any()) else {"acc": None, "auroc": None}
        out[f"acc_{name}{suffix}"] = scores["acc"]
        out[f"auroc_{name}{suffix}"] = scores["auroc"]
    return out


def fairness_audit(prob: Tensor, data: Data, split: str = "test") -> dict[str, Any]:
    """The audit=fairness metrics of class probabilities `prob` [N, 2] on the nodes of `split`.

    Adds to the pipeline's group metrics (which it does not repeat): per-group base rates of the
    labels, per-group mean score and accuracy/AUROC, the record's own bias and the model's bias
    amplification, thresholded at 0.5 (`bias_amplification`) and threshold-free on mean scores
    (`score_amplification`).
    With ground truth (`y_true`) the same keys with suffix `_true` are computed against it.
    """
    m = split_mask(data, split)
    p, y, g = prob[m].cpu(), data.y[m].cpu(), data.group[m].cpu()
    names = group_names(data)
    k = len(names)
    sel_rate = base_rates((p[:, 1] >= 0.5).double(), g, k)
    score = base_rates(p[:, 1].double(), g, k)  # threshold-free: the expected selection rate
    obs_rate = base_rates(y, g, k)
    out: dict[str, Any] = {"audit_split": split, "audit_reference_group": names[0]}
    for i, name in enumerate(names):
        out[f"base_rate_{name}"] = _num(obs_rate[i])
        out[f"mean_score_{name}"] = _num(score[i])
    out["base_rate_gap"] = _num(np.nanmax(obs_rate) - np.nanmin(obs_rate))
    out.update(per_group_utility(p, y, g, names, ""))
    # Disparity of the model relative to that of the record it was trained on.
    amp_obs = bias_amplification(sel_rate, obs_rate)
    out["bias_amplification"] = _headline(amp_obs)
    out["score_amplification"] = _headline(bias_amplification(score, obs_rate))
    y_true = getattr(data, "y_true", None)
    if y_true is None:
        return out
    t = y_true[m].cpu()
    true_rate = base_rates(t, g, k)
    pos = t == 1
    detection = base_rates(y[pos], g[pos], k)  # share of true positives the record holds
    for i, name in enumerate(names):
        out[f"base_rate_{name}_true"] = _num(true_rate[i])
        out[f"detection_rate_{name}"] = _num(detection[i])
    out["base_rate_gap_true"] = _num(np.nanmax(true_rate) - np.nanmin(true_rate))
    out.update(per_group_utility(p, t, g, names, "_true"))
    amp_true = bias_amplification(sel_rate, true_rate)
    record = bias_amplification(obs_rate, true_rate)
    for i, name in enumerate(names[1:], start=1):
        out[f"bias_amplification_{name}_true"] = _num(amp_true[i])
        out[f"record_bias_{name}"] = _num(record[i])
    out["bias_amplification_true"] = _headline(amp_true)
    out["score_amplification_true"] = _headline(bias_amplification(score, true_rate))
    out["record_bias"] = _headline(record)
    return out


def validate(cfg: DictConfig, data: Data | None = None) -> tuple[str, int]:
    """Check the audit=fairness config; return the split and the number of reliability bins (`data` unused)."""
    split = check_choice("audit.split", cfg.get("split", "test"), SPLITS)
    bins = int(check_number("audit.reliability_bins", cfg.get("reliability_bins", 10), low=2, integer=True))
    return split, bins


def run(cfg: DictConfig, data: Data, trained: TrainedModel, run_dir: Path, seed: int) -> dict[str, Any]:
    """Run the fairness audit on the released predictions and draw the per-group reliability plot."""
    split, bins = validate(cfg)
    data = data.cpu()
    if getattr(data, "group", None) is None:
        raise ConfigError("audit.name", "fairness", f"dataset {data.name!r} has no protected group; "
                          "use data=synthetic or a dataset with a `group` attribute")
    prob = trained.predict_proba().cpu()
    if prob.size(1) != 2:
        raise ConfigError("audit.name", "fairness", f"needs a binary task; dataset {data.name!r} has "
                          f"{prob.size(1)} classes")
    out = fairness_audit(prob, data, split)
    m = split_mask(data, split)
    truth = data.y_true[m] if getattr(data, "y_true", None) is not None else None
    plot_reliability(prob[m, 1], data.y[m], truth, data.group[m], group_names(data), bins,
                     Path(run_dir) / RELIABILITY_FILE)
    out["reliability_plot"] = RELIABILITY_FILE
    return out
