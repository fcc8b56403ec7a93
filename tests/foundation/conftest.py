"""Shared fixtures for the foundation tests: small configs composed through Hydra."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")


def compose_cfg(*overrides: str) -> DictConfig:
    """Compose the app config with overrides, as `gnnrisk-run` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def synthetic_cfg() -> DictConfig:
    """The default synthetic-population config (the `data` group)."""
    return OmegaConf.load(Path(CONFIG_DIR) / "data" / "synthetic.yaml")
