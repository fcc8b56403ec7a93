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


PRIVACY_UNITS = ("edge", "node", None)
RELEASES = ("model", "graph", None)
# The fields every `TrainedModel.privacy` holds (metrics.json keys); private mechanisms also report their noise.
PRIVACY_FIELDS = ("mechanism", "privacy_unit", "epsilon", "delta")


class Mechanism:
    """Base class of every mechanism, built-in or plug-in: a way of training a model, private or not.

    The contract (checked by `check_contract` before any training, and by `gnnrisk-check`):

    - `name`: the registry name (`privacy.name`); `privacy_unit`: "edge", "node" or None (not private);
      `releases`: what the epsilon covers, "model" or "graph" (None when not private).
    - `__init__(cfg)` validates the `privacy` config group, raising `ConfigError` (one line) on bad values.
    - `train(data, model_cfg, train_cfg, seed) -> TrainedModel`, deterministic for a fixed seed; its
      `privacy` dict (written to metrics.json) holds `mechanism`, `privacy_unit`, `epsilon` (the epsilon
      spent, None when not private), `delta`, and the noise parameters used.
    - optional `check_model(model_cfg)` / `check_data(data)`: refuse (ConfigError) a model or a graph it cannot
      handle, before any training.
    - optional `dp_event(privacy) -> dp_accounting.DpEvent`: the privacy events of a run, given its
      `privacy` dict, so that its epsilon can be recomputed independently (RDP and PLD accountants).
    """

    name = "none"
    privacy_unit: str | None = None
    # What the reported epsilon covers: the released model (and its predictions), or for graph
    # perturbation the released graph and everything computed from it; None when not private.
    releases: str | None = "model"
    # Whether it can train forecasters on data with periods (`release_periods` or its own `train_forecaster`).
    temporal = False

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    @classmethod
    def contract_violation(cls) -> str | None:
        """What of the class contract this class breaks (None when it meets it): checked before any training."""
        if cls.train is Mechanism.train:
            return "it does not implement train(data, model_cfg, train_cfg, seed)"
        if cls.privacy_unit not in PRIVACY_UNITS:
            return f"its privacy_unit {cls.privacy_unit!r} is not one of edge, node, None"
        if cls.releases not in RELEASES:
            return f"its releases {cls.releases!r} is not one of model, graph, None"
        if not isinstance(cls.name, str) or not cls.name:
            return "it has no name"
        return None

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """The run's privacy events as a dp_accounting DpEvent (given its `privacy` dict), or None if undeclared."""
        return None

    def check_model(self, model_cfg: DictConfig) -> None:
        """Refuse (ConfigError) a model this mechanism cannot train; called before any training."""

    def check_data(self, data: Data) -> None:
        """Refuse (ConfigError) a setting this graph cannot support (e.g. a batch above the training nodes);
        called before any training, with the other checks, so that every bad field is reported at once."""

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
