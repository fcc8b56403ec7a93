"""audit=feedback on data with periods: the forecast of period t+1 decides where attention goes in t+1.

The population evolves by itself (its true outcomes do not depend on attention); what attention
changes is the record. Periods before the last `audit.rounds` keep the passive record of the data
(each group seen through its own detection rate). Then, for each deployment period p:
  1. a fresh learner is trained on the record of periods 0..p-1 (inputs of period s: features,
     the recorded outcome, and for the logistic learner the share of recorded neighbours; target:
     the record of s+1), on the train-mask nodes, full batch, `audit.epochs` epochs;
  2. its forecast for p scores every node; attention goes to `audit.budget` units with the
     propensities of the snapshot loop (`gnnrisk.audit.feedback.propensities`), drawn by
     systematic sampling;
  3. period p is recorded: a true positive with probability `detection_attended` where attention
     was, `detection_unattended` elsewhere; the next learner reads and learns from that record.
Correction modes as in the snapshot loop: `none` (the record at face value), `ipw` (a deployment
period's targets count only where attention was sent, weighted 1/propensity: a Horvitz-Thompson
sample of that period; unattended nodes add no target), `random` (uniform attention). The record
still enters every mode's inputs as it is: the correction is on what the learner is fitted to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from gnnrisk.audit.fairness import group_names
from gnnrisk.audit.feedback import (LOGISTIC, PLOT_FILE, TABLE_FILE, FeedbackSettings, _group_mean,
                                    attention_units, propensities, systematic_sample)
from gnnrisk.audit.feedback_plot import plot_feedback
from gnnrisk.data.temporal import snapshot
from gnnrisk.models import build_forecaster
from gnnrisk.models.recurrent import PeriodGraph
from gnnrisk.train.metrics import classification_metrics
from gnnrisk.utils.files import write_text_atomic


def neighbour_share(record: Tensor, graphs: list[PeriodGraph]) -> Tensor:
    """[T, N]: in each period, the share of a node's ties whose other end is recorded (0 without ties)."""
    out = []
    for t, g in enumerate(graphs):  # periods
        src, dst = g.edge_index
        out.append(scatter(record[src, t], dst, dim=0, dim_size=g.num_nodes, reduce="mean"))
    return torch.stack(out)


def inputs(data: Data, record: Tensor, graphs: list[PeriodGraph], learner: str) -> Tensor:
    """[T, N, F]: features and the record per period; the logistic learner also reads neighbours' record."""
    parts = [data.x.transpose(0, 1), record.T.unsqueeze(-1)]
    if learner == "logistic":
        parts.append(neighbour_share(record, graphs).unsqueeze(-1))
    return torch.cat(parts, dim=-1)


def fit_and_forecast(cfg: DictConfig, s: FeedbackSettings, data: Data, record: Tensor, weight: Tensor,
                     graphs: list[PeriodGraph], period: int, seed: int) -> Tensor:
    """Train a fresh learner on the record of periods < `period`; return P(outcome in `period`) per node."""
    xs = inputs(data, record, graphs, s.learner)[:period]
    torch.manual_seed(seed * 10_007 + period)
    model_cfg = cfg.model if s.learner == "model" else OmegaConf.create(LOGISTIC)
    model = build_forecaster(model_cfg, xs.size(-1), 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    mask = data.train_mask
    target = record[mask, 1:period].T.long()              # [period-1, n_train]: record of s+1 for input s
    w = weight[mask, 1:period].T
    model.train()
    for _ in range(s.epochs):
        optimizer.zero_grad()
        logits = model(xs[:-1], graphs[:period - 1])[:, mask]
        loss = (F.cross_entropy(logits.reshape(-1, 2), target.reshape(-1), reduction="none") * w.reshape(-1)).sum()
        (loss / w.sum().clamp(min=1e-12)).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return model(xs, graphs[:period])[-1].softmax(-1)[:, 1].double()


def simulate_periods(cfg: DictConfig, s: FeedbackSettings, data: Data, seed: int
                     ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Run the deployment periods; one row per period, and the reference shares and rates."""
    data = data.cpu()
    names = group_names(data)
    k, n, periods = len(names), int(data.num_nodes), int(data.num_periods)
    group, y_true = data.group, data.y_true.bool()
    graphs = [PeriodGraph(snapshot(data, t), n) for t in range(periods)]
    unit, num_units = attention_units(data, s.unit)
    unit_size = torch.bincount(unit, minlength=num_units).double()
    gen = torch.Generator().manual_seed(seed)
    record = data.y.float().clone()
    weight = torch.ones(n, periods)
    start = periods - s.rounds
    deployed = y_true[:, start:]
    refs: dict[str, float] = {}
    population = np.bincount(group.numpy(), minlength=k) / n
    for i, name in enumerate(names):
        refs[f"true_rate_{name}"] = float(deployed[group == i].double().mean())
        refs[f"true_share_{name}"] = float(deployed[group == i].sum() / deployed.sum().clamp(min=1))
        refs[f"population_share_{name}"] = float(population[i])
    rows: list[dict[str, Any]] = []
    for rnd, p in enumerate(range(start, periods), start=1):  # deployment periods
        score = fit_and_forecast(cfg, s, data, record, weight, graphs, p, seed)
        unit_score = torch.zeros(num_units, dtype=torch.float64).index_add_(0, unit, score) / unit_size
        prop_unit = propensities(unit_score, s.budget, s.mode, s.explore, s.sharpness)
        attended = systematic_sample(prop_unit, gen)[unit]
        detect = torch.where(attended, s.detection_attended, s.detection_unattended)
        recorded = y_true[:, p] & (torch.rand(n, generator=gen, dtype=torch.float64) < detect)
        record[:, p] = recorded.float()
        if s.mode == "ipw":
            weight[:, p] = (attended.double() / prop_unit[unit]).float()
        share = np.bincount(group.numpy(), weights=attended.double().numpy(), minlength=k) / float(attended.sum())
        test = data.test_mask
        auroc = classification_metrics(torch.stack([1 - score, score], 1)[test], data.y_true[test, p])["auroc"]
        row: dict[str, Any] = {"round": rnd, "period": p, "mode": s.mode, "attended": int(attended.sum()),
                               "recorded": int(recorded.sum()), "auroc_true": auroc}
        observed, true_rate = _group_mean(recorded, group, k), _group_mean(y_true[:, p], group, k)
        mean_score = _group_mean(score, group, k)
        for i, name in enumerate(names):
            row.update({f"attention_share_{name}": share[i], f"observed_rate_{name}": observed[i],
                        f"true_rate_{name}": true_rate[i], f"mean_score_{name}": mean_score[i]})
        rows.append(row)
    return pd.DataFrame(rows), refs


def run_feedback_periods(cfg: DictConfig, s: FeedbackSettings, data: Data, run_dir: Path,
                         seed: int) -> dict[str, Any]:
    """Simulate, save feedback.csv and feedback.png; return the first/final/mean per-period figures."""
    table, refs = simulate_periods(cfg, s, data, seed)
    names = group_names(data)
    write_text_atomic(Path(run_dir) / TABLE_FILE, table.to_csv(index=False))
    plot_feedback(table, refs, names, Path(run_dir) / PLOT_FILE)
    first, last = table.iloc[0], table.iloc[-1]
    out: dict[str, Any] = {"feedback_mode": s.mode, "feedback_unit": s.unit, "feedback_rounds": s.rounds,
                           "feedback_budget": s.budget, "feedback_first_period": int(first["period"])}
    out.update({f"feedback_{key}": float(v) for key, v in refs.items()})
    for name in names:
        out[f"feedback_attention_share_{name}_first"] = float(first[f"attention_share_{name}"])
        out[f"feedback_attention_share_{name}_final"] = float(last[f"attention_share_{name}"])
        out[f"feedback_attention_share_{name}_mean"] = float(table[f"attention_share_{name}"].mean())
        out[f"feedback_observed_rate_{name}_final"] = float(last[f"observed_rate_{name}"])
    out["feedback_auroc_true_first"] = first["auroc_true"]
    out["feedback_auroc_true_final"] = last["auroc_true"]
    out["feedback_table"], out["feedback_plot"] = TABLE_FILE, PLOT_FILE
    return out
