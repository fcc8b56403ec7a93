"""The mechanism interface and the non-private reference mechanism."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.data.temporal import snapshot
from gnnrisk.models import build_model
from gnnrisk.train.forecast import Forecast, ForecastWindow, rolling_origin
from gnnrisk.train.loop import FitResult, fit, predict_proba


@dataclass
class TrainedModel:
    """A trained model, the graph it is queried on, and the privacy it spent.

    `graph` is what the model sees at inference: the original data for non-private training,
    the perturbed graph for graph-perturbation mechanisms. `privacy` holds the flat
    metrics.json fields: epsilon, delta, privacy_unit, mechanism and the noise parameters used.
    """

    model: nn.Module
    graph: Data
    fit: FitResult
    privacy: dict[str, Any] = field(default_factory=dict)
    # Mechanisms whose released model does not read edges at inference (GAP) provide an equivalent
    # model that does, on its own graph, so that explainers can mask edges.
    explain_view: Callable[[], tuple[nn.Module, Data]] | None = None
    # Flat values computed during training from data the epsilon protects (e.g. per-stage validation
    # accuracy under node-level DP): written apart, labelled as outside the budget, never in metrics.json.
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self) -> Tensor:
        """Class probabilities for every node, as released by this model."""
        return predict_proba(self.model, self.graph)

    def explainable(self) -> tuple[nn.Module, Data]:
        """The (model, graph) an edge-level explainer works on: `explain_view()`, else the released pair."""
        return self.explain_view() if self.explain_view is not None else (self.model, self.graph)


class Mechanism:
    """Base class: a way of training a model, private or not."""

    name = "none"
    privacy_unit: str | None = None
    # What the reported epsilon covers: the released model (and its predictions), or for graph
    # perturbation the released graph and everything computed from it; None when not private.
    releases: str | None = "model"
    # Whether it can train forecasters on data with periods (`release_periods` or its own `train_forecaster`).
    temporal = False

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def check_model(self, model_cfg: DictConfig) -> None:
        """Refuse (ConfigError) a model this mechanism cannot train; called before any training."""

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Train a model on `data` and return it with the privacy it spent."""
        raise NotImplementedError

    def release_periods(self, data: Data, seed: int, periods: int) -> tuple[list[Tensor], dict[str, Any]]:
        """The graph of each of the first `periods` periods that forecasters may read, and the privacy spent."""
        raise NotImplementedError

    def train_forecaster(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, window: ForecastWindow,
                         seed: int) -> Forecast:
        """Rolling-origin forecasters trained on the released periods (data with periods)."""
        edge_indices, privacy = self.release_periods(data, seed, window.periods_read)
        return rolling_origin(data, edge_indices, model_cfg, train_cfg, window, seed, privacy)


class NonPrivate(Mechanism):
    """Ordinary training: no formal privacy (epsilon is reported as null)."""

    releases = None
    temporal = True

    def release_periods(self, data: Data, seed: int, periods: int) -> tuple[list[Tensor], dict[str, Any]]:
        """The true snapshots."""
        return [snapshot(data, t) for t in range(periods)], {
            "mechanism": "none", "privacy_unit": None, "epsilon": None, "delta": None}

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Fit the configured model on the original graph."""
        torch.manual_seed(seed)
        num_classes = int(data.y.max()) + 1
        model = build_model(model_cfg, data.num_features, num_classes).to(data.x.device)
        result = fit(model, data, train_cfg, seed)
        return TrainedModel(model=model, graph=data, fit=result, privacy={
            "mechanism": "none", "privacy_unit": None, "epsilon": None, "delta": None})
