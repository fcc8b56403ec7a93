"""Seeding and device selection, so that the same config and seed give the same numbers."""

from __future__ import annotations

import random

import numpy as np
import torch

from gnnrisk.errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; `cpu`, `cuda` and `cuda:N` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu" or str(name).startswith("cuda"):
        if str(name).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device", name, "CUDA is not available here; use auto or cpu")
        return torch.device(name)
    raise ConfigError("device", name, "expected auto, cpu, cuda or cuda:N")
