"""Shared helpers of the temporal tests."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def temporal_cfg(**changes):
    """data=synthetic_temporal as Hydra composes it (the snapshot defaults, then the temporal file)."""
    cfg = OmegaConf.merge(OmegaConf.load(CONFIGS / "synthetic.yaml"), OmegaConf.load(CONFIGS / "synthetic_temporal.yaml"))
    cfg.pop("defaults")
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    return cfg
