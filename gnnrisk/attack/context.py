"""What every attack receives: the data, the released model, the stage config and shared lazy results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError
from gnnrisk.attack.targets import train_reference
from gnnrisk.privacy import TrainedModel


def inductive_sides(data: Data, attack: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The inductive split (training side, attack side) on CPU, or a ConfigError naming the attack."""
    train_side = getattr(data, "ind_train_mask", None)
    attack_side = getattr(data, "ind_test_mask", None)
    if train_side is None or attack_side is None or not attack_side.any() or not train_side.any():
        raise ConfigError("attack", attack, f"needs an inductive split (data with ind_train_mask and "
                          f"ind_test_mask); dataset {data.name!r} has none")
    return train_side.cpu(), attack_side.cpu()


@dataclass
class AttackContext:
    """The run as an attacker sees it; `cache` shares models trained by one attack with the next."""

    data: Data
    trained: TrainedModel
    cfg: DictConfig
    seed: int
    cache: dict[str, Any] = field(default_factory=dict)

    def generator(self, salt: int) -> torch.Generator:
        """A seeded generator per attack, so that adding an attack does not change another's draws."""
        return torch.Generator().manual_seed(self.seed * 1009 + salt)

    @property
    def delta(self) -> float:
        """The mechanism's delta (0 for pure DP or no privacy)."""
        return float(self.trained.privacy.get("delta") or 0.0)

    def require_inductive(self, attack: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The inductive split (training side, attack side), or a ConfigError naming the attack."""
        return inductive_sides(self.data, attack)

    def reference(self) -> TrainedModel:
        """The `mlp` reference (`attack.reference`) trained once on the same data and shared by attacks."""
        if "reference" not in self.cache:
            self.cache["reference"] = train_reference(self.data, self.cfg.reference, self.cfg.target.train, self.seed)
        return self.cache["reference"]
