"""Fixtures for the foundation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from foundation_helpers import CONFIG_DIR


@pytest.fixture
def synthetic_cfg() -> DictConfig:
    """The default synthetic-population config (the `data` group)."""
    return OmegaConf.load(Path(CONFIG_DIR) / "data" / "synthetic.yaml")
