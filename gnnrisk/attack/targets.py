"""Models the attacks train themselves: the feature-only reference, shadow models, re-released targets."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.privacy import TrainedModel, build_mechanism
from gnnrisk.privacy.base import NonPrivate


def train_reference(data: Data, reference_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
    """The `mlp` reference trained on the same data: it never sees a tie, so its leakage is homophily alone."""
    return NonPrivate(reference_cfg).train(data, reference_cfg, train_cfg, seed)


def train_shadow(data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
    """An attacker's shadow model: the target's architecture, trained without privacy on the attacker's data."""
    return NonPrivate(model_cfg).train(data, model_cfg, train_cfg, seed)


def retrain_target(target_cfg: DictConfig, data: Data, seed: int) -> TrainedModel:
    """Run the run's own mechanism (`target.privacy`, `target.model`, `target.train`) on modified data."""
    mechanism = build_mechanism(target_cfg.privacy)
    torch.manual_seed(seed)
    return mechanism.train(data, target_cfg.model, target_cfg.train, seed)

