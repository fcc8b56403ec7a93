"""audit=feedback: deployment rounds in which the model's scores decide where attention goes.

A Polya-urn style loop (Ensign et al., FAT* 2018) on the synthetic population, whose latent outcome
`y_true` is known. Incidents recur: every true positive has an incident in every round, and an
incident is recorded with probability `detection_attended` where attention was sent and
`detection_unattended` elsewhere. The record starts as the biased observation `data.y` (round 0).
Each round: train a fresh model on the record so far (train-mask nodes), score every node, send
attention to `budget` units (nodes or communities) with known propensities, record what is
detected, repeat.

Attention propensities: modes `none` and `ipw` send attention where scores are high: in proportion
to score ** sharpness (sharpness 1: the Polya urn; large: the top-scored units), mixed with a
uniform share `explore`; mode `random` uses budget/U for every unit. The attended set
is drawn by systematic sampling, so exactly `budget` units are attended and each unit's inclusion
probability is exactly its propensity.

How the record becomes training data (per node: a positive and a negative weight):
  - `none`, `random`: each round every node counts once, positive if an incident was recorded,
    negative otherwise (absence of a record is read as absence of the outcome: the naive record).
  - `ipw`: Ensign et al.'s correction: what attention finds counts with weight 1/propensity; here
    both the incidents found and the audits that found nothing (a classifier needs negatives), so
    each round's audited sample is a Horvitz-Thompson sample of the population and the learnt score
    estimates detection_attended * P(outcome), whatever the past allocation. Unattended nodes add
    nothing (their missing record says nothing, and records made without attention are not used).
    The initial record keeps weight 1 and is diluted as rounds accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.audit.fairness import group_names
from gnnrisk.audit.feedback_plot import plot_feedback
from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.models import build_model
from gnnrisk.train.loop import predict_proba
from gnnrisk.train.metrics import classification_metrics
from gnnrisk.utils.files import write_text_atomic

MODES = ("none", "ipw", "random")
UNITS = ("node", "community")
LEARNERS = ("model", "logistic")
TABLE_FILE = "feedback.csv"
PLOT_FILE = "feedback.png"
LOGISTIC = {"name": "mlp", "hidden_channels": 1, "num_layers": 1, "dropout": 0.0, "norm": None}


@dataclass
class FeedbackSettings:
    """The validated audit=feedback config, with the budget as a whole number of units."""

    rounds: int
    budget: int
    unit: str
    mode: str
    detection_attended: float
    detection_unattended: float
    explore: float
    sharpness: float
    learner: str
    epochs: int
    lr: float
    weight_decay: float


def attention_units(data: Data, unit: str) -> tuple[Tensor, int]:
    """The unit each node belongs to (itself, or its community as 0..U-1) and the number of units U."""
    if unit == "node":
        return torch.arange(data.num_nodes), int(data.num_nodes)
    _, inverse = torch.unique(data.community.cpu(), return_inverse=True)
    return inverse, int(inverse.max()) + 1


def validate(cfg: DictConfig, data: Data) -> FeedbackSettings:
    """Check the audit=feedback config against the dataset; ConfigError names the field and what is allowed."""
    if getattr(data, "name", None) not in ("synthetic", "synthetic_temporal") or getattr(data, "y_true", None) is None:
        raise ConfigError("data.name", getattr(data, "name", None), "audit=feedback simulates on the synthetic "
                          "population: use data=synthetic or data=synthetic_temporal")
    mode = check_choice("audit.mode", cfg.mode, MODES)
    unit = check_choice("audit.unit", cfg.unit, UNITS)
    rounds = int(check_number("audit.rounds", cfg.rounds, low=1, integer=True))
    _, num_units = attention_units(data, unit)
    allowed = f"expected a fraction in (0, 1) or a whole number of {unit}s in [1, {num_units}]"
    b = cfg.budget
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b <= num_units or (b >= 1 and b != int(b)):
        raise ConfigError("audit.budget", b, allowed)
    budget = max(1, int(round(b * num_units))) if b < 1 else int(b)
    explore = check_number("audit.explore", cfg.explore, low=0.0, high=1.0)
    if mode == "ipw" and explore == 0:
        raise ConfigError("audit.explore", cfg.explore, "mode=ipw needs explore in (0, 1]: every unit "
                          "must have a positive probability of attention")
    learner = check_choice("audit.learner", cfg.learner, LEARNERS)
    if learner == "model" and cfg.get("model") is None:
        raise ConfigError("audit.model", None, "learner=model needs the model config (audit.model: ${model})")
    if getattr(data, "num_periods", None) is not None and rounds > int(data.num_periods) - 2:
        raise ConfigError("audit.rounds", rounds, f"expected at most {int(data.num_periods) - 2} deployment "
                          f"periods with data.periods={int(data.num_periods)} (the first learner needs two "
                          "recorded periods)")
    return FeedbackSettings(
        rounds=rounds, budget=budget, unit=unit, mode=mode,
        detection_attended=check_number("audit.detection_attended", cfg.detection_attended, low=0.0, high=1.0),
        detection_unattended=check_number("audit.detection_unattended", cfg.detection_unattended, low=0.0, high=1.0),
        explore=explore, learner=learner,
        sharpness=check_number("audit.sharpness", cfg.sharpness, low=0.0, low_open=True),
        epochs=int(check_number("audit.epochs", cfg.epochs, low=1, integer=True)),
        lr=check_number("audit.lr", cfg.lr, low=0.0, low_open=True),
        weight_decay=check_number("audit.weight_decay", cfg.weight_decay, low=0.0))


def proportional_to_size(weight: Tensor, budget: int) -> Tensor:
    """Inclusion probabilities proportional to `weight`, summing to `budget`, capped at 1 (excess redistributed)."""
    prob = torch.zeros_like(weight)
    free = torch.ones_like(weight, dtype=torch.bool)
    for _ in range(weight.numel()):  # each pass caps at least one unit; usually 1-3 passes
        w = torch.where(free, weight, torch.zeros_like(weight))
        share = (budget - prob.sum()) * w / w.sum().clamp(min=1e-300)
        over = free & (share >= 1.0)
        if not bool(over.any()):
            return torch.where(free, share, prob)
        prob[over], free = 1.0, free & ~over
    return prob


def propensities(unit_scores: Tensor, budget: int, mode: str, explore: float, sharpness: float) -> Tensor:
    """Probability that each unit receives attention this round; they sum to `budget`.

    `none`/`ipw`: (1 - explore) * [proportional to score ** sharpness] + explore * uniform; sharpness 1 is
    the Polya urn (attention in proportion to the estimated rate), large values approach top-`budget`.
    `random`: uniform.
    """
    uniform = torch.full_like(unit_scores, budget / unit_scores.numel())
    if mode == "random":
        return uniform
    weight = (unit_scores / unit_scores.max()).pow(sharpness)  # scaled first so large powers stay finite
    return (1.0 - explore) * proportional_to_size(weight, budget) + explore * uniform


def systematic_sample(prob: Tensor, generator: torch.Generator) -> Tensor:
    """Draw round(sum prob) units, unit i with inclusion probability prob[i] (<= 1), in random order."""
    perm = torch.randperm(prob.numel(), generator=generator)
    p = prob[perm].double()
    end = torch.cumsum(p, 0)
    u = torch.rand((), generator=generator, dtype=torch.float64)
    hit = torch.floor(end - u) - torch.floor(end - p - u) >= 1
    chosen = torch.zeros(prob.numel(), dtype=torch.bool)
    chosen[perm] = hit
    return chosen


def make_learner(cfg: DictConfig, settings: FeedbackSettings, in_channels: int) -> nn.Module:
    """A fresh, untrained scoring model: the configured model, or logistic regression on the features."""
    model_cfg = cfg.model if settings.learner == "model" else OmegaConf.create(LOGISTIC)
    return build_model(model_cfg, in_channels, 2)


def train_on_record(model: nn.Module, data: Data, pos: Tensor, neg: Tensor, settings: FeedbackSettings) -> None:
    """Full-batch Adam on the weighted record: node i counts pos[i] times positive and neg[i] times negative."""
    mask = data.train_mask
    counts = torch.stack([neg, pos], dim=1)[mask]
    weight = counts.sum(1)
    target = counts / weight.clamp(min=1e-12).unsqueeze(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    model.train()
    for _ in range(settings.epochs):
        optimizer.zero_grad()
        logits = model(data.x, data.edge_index)[mask]
        loss = (F.cross_entropy(logits, target, reduction="none") * weight).sum() / weight.sum()
        loss.backward()
        optimizer.step()


def _group_mean(values: Tensor, group: Tensor, k: int) -> np.ndarray:
    """Mean of `values` within each of the `k` groups."""
    g = group.numpy()
    return np.bincount(g, weights=values.double().numpy(), minlength=k) / np.bincount(g, minlength=k)


def simulate(cfg: DictConfig, s: FeedbackSettings, data: Data, seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Run the feedback rounds; return one row per round and the fixed reference shares and rates."""
    data = data.cpu()
    names = group_names(data)
    k = len(names)
    group, y_true = data.group, data.y_true.bool()
    unit, num_units = attention_units(data, s.unit)
    unit_size = torch.bincount(unit, minlength=num_units).double()
    gen = torch.Generator().manual_seed(seed)
    pos, neg = data.y.double(), 1.0 - data.y.double()  # round 0: the biased initial record
    true_rate = _group_mean(y_true, group, k)
    true_share = np.bincount(group.numpy(), weights=y_true.double().numpy(), minlength=k) / float(y_true.sum())
    refs = {f"true_rate_{n}": true_rate[i] for i, n in enumerate(names)}
    refs.update({f"true_share_{n}": true_share[i] for i, n in enumerate(names)})
    population = np.bincount(group.numpy(), minlength=k) / data.num_nodes
    refs.update({f"population_share_{n}": population[i] for i, n in enumerate(names)})
    rows: list[dict[str, Any]] = []
    for rnd in range(1, s.rounds + 1):  # a loop over deployment rounds
        record_rate = np.bincount(group.numpy(), weights=pos.numpy(), minlength=k) / np.bincount(
            group.numpy(), weights=(pos + neg).numpy(), minlength=k)
        torch.manual_seed(seed * 10_007 + rnd)
        model = make_learner(cfg, s, data.num_features)
        train_on_record(model, data, pos.float(), neg.float(), s)
        score = predict_proba(model, data)[:, 1].double()
        unit_score = torch.zeros(num_units, dtype=torch.float64).index_add_(0, unit, score) / unit_size
        prop_unit = propensities(unit_score, s.budget, s.mode, s.explore, s.sharpness)
        attended = systematic_sample(prop_unit, gen)[unit]
        prop = prop_unit[unit]
        detect = torch.where(attended, s.detection_attended, s.detection_unattended)
        recorded = y_true & (torch.rand(data.num_nodes, generator=gen, dtype=torch.float64) < detect)
        if s.mode == "ipw":
            w = attended.double() / prop  # Horvitz-Thompson weight of the audited sample
            pos, neg = pos + w * recorded, neg + w * ~recorded
        else:
            pos, neg = pos + recorded.double(), neg + (~recorded).double()
        share = np.bincount(group.numpy(), weights=attended.double().numpy(), minlength=k) / float(attended.sum())
        observed = _group_mean(recorded, group, k)
        mean_score = _group_mean(score, group, k)
        test = data.test_mask
        auroc = classification_metrics(torch.stack([1 - score, score], 1)[test], data.y_true[test])["auroc"]
        row: dict[str, Any] = {"round": rnd, "mode": s.mode, "attended": int(attended.sum()),
                               "recorded": int(recorded.sum()), "auroc_true": auroc}
        for i, n in enumerate(names):
            row.update({f"attention_share_{n}": share[i], f"observed_rate_{n}": observed[i],
                        f"record_rate_{n}": record_rate[i], f"mean_score_{n}": mean_score[i]})
        rows.append(row)
    return pd.DataFrame(rows), refs


def run_snapshot(cfg: DictConfig, settings: FeedbackSettings, data: Data, run_dir: Path, seed: int) -> dict[str, Any]:
    """Simulate the loop on one snapshot, save feedback.csv and feedback.png, return the first/final-round figures."""
    table, refs = simulate(cfg, settings, data, seed)
    names = group_names(data)
    write_text_atomic(Path(run_dir) / TABLE_FILE, table.to_csv(index=False))
    plot_feedback(table, refs, names, Path(run_dir) / PLOT_FILE)
    first, last = table.iloc[0], table.iloc[-1]
    out: dict[str, Any] = {"feedback_mode": settings.mode, "feedback_unit": settings.unit,
                           "feedback_rounds": settings.rounds, "feedback_budget": settings.budget}
    out.update({f"feedback_{key}": float(v) for key, v in refs.items()})
    for n in names:
        out[f"feedback_attention_share_{n}_first"] = float(first[f"attention_share_{n}"])
        out[f"feedback_attention_share_{n}_final"] = float(last[f"attention_share_{n}"])
        out[f"feedback_observed_rate_{n}_final"] = float(last[f"observed_rate_{n}"])
        out[f"feedback_record_rate_{n}_final"] = float(last[f"record_rate_{n}"])
    out["feedback_auroc_true_first"] = first["auroc_true"]
    out["feedback_auroc_true_final"] = last["auroc_true"]
    out["feedback_table"], out["feedback_plot"] = TABLE_FILE, PLOT_FILE
    return out
