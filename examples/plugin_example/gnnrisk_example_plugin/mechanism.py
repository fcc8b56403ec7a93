"""`rr_edges`: randomized response on every adjacency cell, then a GNN trained on the released graph only."""

from __future__ import annotations

import math
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.models import build_model
from gnnrisk.privacy import Mechanism, TrainedModel
from gnnrisk.train.loop import fit


class RandomizedResponseEdges(Mechanism):
    """Each of the N(N-1)/2 adjacency cells flips with probability 1/(e^epsilon + 1): edge-level epsilon-DP.

    Two graphs that differ in one edge differ in one cell; randomized response on that cell is
    epsilon-DP and every other cell is independent of it. The model only ever sees the released graph,
    so its predictions are post-processing and the epsilon covers everything computed from them.
    """

    name = "rr_edges"
    privacy_unit = "edge"
    releases = "graph"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.epsilon = check_number("privacy.epsilon", cfg.get("epsilon"), low=0.0, low_open=True)
        if math.isinf(self.epsilon):
            raise ConfigError("privacy.epsilon", cfg.get("epsilon"), "expected a finite number > 0")
        if cfg.get("delta", 0.0) not in (0, 0.0, None):
            raise ConfigError("privacy.delta", cfg.get("delta"), "rr_edges is pure epsilon-DP; delta must be 0")
        self.max_nodes = int(check_number("privacy.max_nodes", cfg.get("max_nodes", 5000), low=2, integer=True))

    def flip_probability(self) -> float:
        """1 / (e^epsilon + 1), the chance that one cell flips."""
        return 1.0 / (math.exp(self.epsilon) + 1.0)

    def release(self, data: Data, seed: int) -> Tensor:
        """The released undirected edge_index: the true upper triangle with every cell flipped independently."""
        n = int(data.num_nodes)
        if n > self.max_nodes:
            raise ConfigError("privacy.max_nodes", self.max_nodes, f"the graph has {n} nodes; rr_edges builds a "
                              "dense adjacency, raise privacy.max_nodes or use privacy=edgerand")
        adjacency = torch.zeros(n, n, dtype=torch.bool)
        adjacency[data.edge_index[0].cpu(), data.edge_index[1].cpu()] = True
        rows, cols = torch.triu_indices(n, n, offset=1)
        generator = torch.Generator().manual_seed(seed)
        flips = torch.rand(rows.numel(), generator=generator) < self.flip_probability()
        keep = adjacency[rows, cols] ^ flips
        upper = torch.stack([rows[keep], cols[keep]])
        return coalesce(torch.cat([upper, upper.flip(0)], dim=1), num_nodes=n).to(data.edge_index.device)

    def check_model(self, model_cfg: DictConfig) -> None:
        """A graph model: perturbing ties is pointless for the edge-blind mlp."""
        if model_cfg.name == "mlp":
            raise ConfigError("model.name", "mlp", "rr_edges perturbs ties, which mlp never reads; use a GNN")

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Release the graph once, then fit the configured GNN on it (features and labels are public)."""
        released = data.clone()
        released.edge_index = self.release(data, seed)
        torch.manual_seed(seed)
        model = build_model(model_cfg, data.num_features, int(data.y.max()) + 1).to(data.x.device)
        result = fit(model, released, train_cfg, seed)
        privacy = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "epsilon": self.epsilon, "delta": 0.0,
                   "flip_prob": self.flip_probability(), "released_num_edges": int(released.edge_index.size(1)) // 2}
        return TrainedModel(model=model, graph=released, fit=result, privacy=privacy)

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """Randomized response over 2 buckets that outputs a uniform bucket with probability 2 x flip_prob."""
        import dp_accounting as dpa

        return dpa.RandomizedResponseDpEvent(noise_parameter=2 * privacy["flip_prob"], num_buckets=2)
