"""Membership inference per node type on the city (`attack=mia`, data=synthetic_city): were a node's labels in the
forecaster's training loss?

The node type is the forecast type (`eval.target`: places or people). A seeded random half of its nodes outside the
run's held-out nodes (`train.val_share`, early stopping) are members, the other half non-members. The run's
forecaster is trained again for the run's latest origin, by the run's mechanism (privacy=none: the true city;
edgerand/lapgraph: the same released city) with the same settings and seed, but with the labels (next period's
recorded counts) of the members only in its Poisson loss (`attack_model.fit_forecaster`, `loss_mask`). Each node
is then scored on the origins the model was trained on: `loss`, minus its mean Poisson loss (a node the model fits
well is called a member); `deviance`, minus its mean Poisson deviance (the loss less that of a perfect fit to the
same counts: the label's own difficulty removed, as a calibrated loss attack). Metrics per score: AUROC, TPR at
1% and 0.1% FPR, and the advantage max(TPR - FPR); the headline (`attack_mia_auroc`, `_advantage`) is the score
with the best AUROC on one stratified half of the nodes, measured on the other half (as the homogeneous MIA).

What it measures: how much the trained forecaster memorises the targets of the nodes it was fit on, beyond what
it generalises to nodes of the same city whose targets it never saw; a privacy risk for label-level secrets of a
node (e.g. that a person's recorded involvements were used). What it does not measure: whether an incident is in
the record (the canary audit at the incident unit, attack=canary with privacy.unit=incident), whether a person is
in the city at all (the person unit), nor the labels' appearance as inputs: a node's recorded counts are also
features of the later snapshots, which members and non-members alike are read with (a forecaster reads the
record); only the loss differs. Refused: the analysts' baselines (nothing is trained on labels) and hetero_gap (its
head is trained inside the mechanism: under the person and incident units on DP-SGD per incident, which
attack=canary audits at the unit; under an edge unit the labels are not what it protects), as any mechanism that
trains its own forecaster (`attack_model.trains_inside`): the attack does not re-run that training.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve
from torch import Tensor
from torch_geometric.data import HeteroData

from gnnrisk.attack.membership import held_out_headline, selection_halves
from gnnrisk.attack.scores import roc_metrics
from gnnrisk.errors import ConfigError
from gnnrisk.privacy.city.attack_model import (
    TRAINED,
    CityRun,
    fit_forecaster,
    held_out_nodes,
    refuse_trained_inside,
)

SCORES = ("loss", "deviance")


def validate_mia(data: HeteroData | None, mechanism: Any, model: str | None, target: str,
                 train_cfg: Any = None, seed: int = 0) -> None:
    """Refuse an untrained forecaster, hetero_gap, and a split with fewer than two members or non-members."""
    if model is not None and model not in TRAINED:
        raise ConfigError("model.name", model, "membership inference asks whether a node's labels were in the "
                          "training loss: this forecaster is a map of the record, trained on nothing; use one of "
                          + ", ".join(TRAINED))
    refuse_trained_inside(mechanism, "mia", "this attack", {"hetero_gap": (
        "privacy=hetero_gap trains its head inside the mechanism, which this attack does not re-run (under the "
        "person and incident units on DP-SGD per incident: attack=canary audits those); run it on privacy=none, "
        "edgerand or lapgraph")})
    if data is not None and train_cfg is not None:
        eligible = int((~held_out_nodes(data, train_cfg, seed, target)).sum())
        if eligible < 4:
            raise ConfigError("train.val_share", train_cfg.get("val_share"), f"leaves {eligible} {target} nodes "
                              "outside the held-out ones: membership inference needs 2 members and 2 non-members")


def member_split(eligible: Tensor, generator: torch.Generator) -> Tensor:
    """A random half of the `eligible` nodes (bool [N]) as members; the others stay False."""
    idx = eligible.nonzero().flatten()
    members = torch.zeros_like(eligible)
    members[idx[torch.randperm(idx.numel(), generator=generator)[: idx.numel() // 2]]] = True
    return members


def membership_scores(log_rates: Tensor, labels: Tensor) -> dict[str, np.ndarray]:
    """Per node (columns of [origins, N]): minus its mean Poisson loss and minus its mean Poisson deviance."""
    log_rates, labels = log_rates.double(), labels.double()
    loss = F.poisson_nll_loss(log_rates, labels, log_input=True, reduction="none")
    saturated = F.poisson_nll_loss(labels.clamp(min=1e-12).log(), labels, log_input=True, reduction="none")
    return {"loss": (-loss.mean(0)).numpy(), "deviance": (-2 * (loss - saturated).mean(0)).numpy()}


def advantage(labels: np.ndarray, scores: np.ndarray) -> float:
    """max over thresholds of TPR - FPR (membership advantage, Yeom et al. 2018)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float((tpr - fpr).max())


def mia_metrics(members: Tensor, scores: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Per score `attack_mia_<score>_*` (AUROC, TPR at low FPR, advantage); the headline (`attack_mia_*`) is the
    score chosen on a stratified half, measured on the other (`held_out_headline`, its halves drawn from `seed`)."""
    y = members.numpy()
    out: dict[str, Any] = {}
    for name, s in scores.items():
        out.update(roc_metrics(f"attack_mia_{name}", y, s))
        out[f"attack_mia_{name}_advantage"] = advantage(y, s)
    out.update(held_out_headline(members, scores, torch.Generator().manual_seed(seed)))
    held_out = ~selection_halves(members, torch.Generator().manual_seed(seed)).numpy()  # the same halves
    out["attack_mia_advantage"] = advantage(y[held_out], scores[out["attack_mia_attack"]][held_out])
    return out


def run_mia(run: CityRun) -> dict[str, Any]:
    """Membership of the forecast type's labels in the training loss: `attack_mia_*`."""
    validate_mia(run.data, run.mechanism, run.model, run.target, run.train_cfg, run.seed)
    eligible = ~held_out_nodes(run.data, run.train_cfg, run.seed, run.target)
    members = member_split(eligible, run.generator(4))
    start = time.perf_counter()
    fitted = fit_forecaster(run.released(), run.model, run.model_cfg, run.train_cfg, run.origins, run.seed,
                            run.target, loss_mask=members)
    log_rates, labels = fitted.training_targets()
    scores = {k: v[eligible.numpy()] for k, v in membership_scores(log_rates, labels).items()}
    out: dict[str, Any] = {"attack_mia_node_type": run.target, "attack_mia_members": int(members.sum()),
                           "attack_mia_non_members": int((eligible & ~members).sum()),
                           "attack_mia_nodes": int(eligible.sum()), "attack_mia_origin": fitted.origin,
                           "attack_mia_training_origins": fitted.end, "attack_mia_fit_seconds":
                           time.perf_counter() - start}
    out.update(mia_metrics(members[eligible], scores, run.seed * 1009 + 8))
    return out
