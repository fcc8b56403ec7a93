"""Node membership inference: confidence and loss thresholds, and a shadow-model attack.

Evaluation nodes lie on the training side of the inductive split: members are its training
nodes, non-members its test nodes, balanced by subsampling. The shadow model is trained by the
attacker on the attack side (a disjoint population from the same distribution), and a logistic
regression on sorted posteriors learns member vs non-member there (Shokri et al. 2017;
He et al. / Olatunji et al. 2021 for nodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.attack.context import AttackContext, inductive_sides
from gnnrisk.attack.scores import roc_metrics
from gnnrisk.attack.targets import train_shadow

ATTACKS = ("confidence", "loss", "shadow")


def balanced_members(members: Tensor, non_members: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Node ids and labels (1 = member) with as many members as non-members."""
    m, n = members.nonzero().flatten(), non_members.nonzero().flatten()
    size = min(m.numel(), n.numel())
    m = m[torch.randperm(m.numel(), generator=generator)[:size]]
    n = n[torch.randperm(n.numel(), generator=generator)[:size]]
    return torch.cat([m, n]), torch.cat([torch.ones(size), torch.zeros(size)]).bool()


def sorted_posteriors(prob: Tensor) -> np.ndarray:
    """Posteriors sorted in decreasing order: the label-free attack features."""
    return prob.sort(dim=-1, descending=True).values.double().numpy()


def threshold_scores(prob: Tensor, y: Tensor) -> dict[str, np.ndarray]:
    """Confidence (top posterior) and negative cross-entropy on the observed label."""
    p = prob.double()
    return {"confidence": p.max(-1).values.numpy(),
            "loss": p.gather(1, y.view(-1, 1)).clamp_min(1e-12).log().flatten().numpy()}


def shadow_classifier(ctx: AttackContext, attack_side: Tensor) -> LogisticRegression:
    """Train a shadow model on the attack side and an attack classifier on its member/non-member posteriors."""
    shadow_data = ctx.data.subgraph(attack_side.to(ctx.data.x.device))
    shadow = train_shadow(shadow_data, ctx.cfg.target.model, ctx.cfg.target.train, ctx.seed + 1)
    prob = shadow.predict_proba().cpu()
    nodes, labels = balanced_members(shadow_data.train_mask.cpu(), shadow_data.test_mask.cpu(), ctx.generator(3))
    clf = LogisticRegression(max_iter=1000)
    clf.fit(sorted_posteriors(prob[nodes]), labels.numpy())
    return clf


def validate(cfg: DictConfig, data: Data) -> None:
    """Membership inference needs the inductive split (its shadow model trains on the attack side)."""
    inductive_sides(data, "mia")


def run(ctx: AttackContext) -> dict[str, Any]:
    """AUROC and TPR at 1% and 0.1% FPR for each attack; the headline fields are the best of them."""
    train_side, attack_side = ctx.require_inductive("mia")
    data = ctx.data
    nodes, labels = balanced_members(data.train_mask.cpu() & train_side, data.test_mask.cpu() & train_side,
                                     ctx.generator(4))
    prob = ctx.trained.predict_proba().cpu()[nodes]
    scores = threshold_scores(prob, data.y.cpu()[nodes])
    scores["shadow"] = shadow_classifier(ctx, attack_side).predict_proba(sorted_posteriors(prob))[:, 1]
    y = labels.numpy()
    out: dict[str, Any] = {"attack_mia_nodes": int(y.size)}
    for name in ATTACKS:
        out.update(roc_metrics(f"attack_mia_{name}", y, scores[name]))
    for metric in ("auroc", "tpr_at_1fpr", "tpr_at_01fpr"):
        out[f"attack_mia_{metric}"] = max(out[f"attack_mia_{name}_{metric}"] for name in ATTACKS)
    return out
