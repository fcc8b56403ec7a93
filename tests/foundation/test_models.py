"""Every model is forward(x, edge_index); the MLP reference never sees a tie."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from foundation_helpers import CONFIG_DIR
from gnnrisk.errors import ConfigError
from gnnrisk.models import STATIC_MODELS, build_model, uses_edges


@pytest.mark.parametrize("name", STATIC_MODELS)
def test_models_build_and_use_edges_as_promised(name):
    cfg = OmegaConf.load(f"{CONFIG_DIR}/model/{name}.yaml")
    model = build_model(cfg, 5, 2).eval()
    x = torch.randn(30, 5)
    ei = torch.randint(0, 30, (2, 80))
    out = model(x, ei)
    assert out.shape == (30, 2)
    other = model(x, torch.empty(2, 0, dtype=torch.long))
    assert torch.allclose(out, other) == (not uses_edges(model))


def test_bad_model_config():
    cfg = OmegaConf.load(f"{CONFIG_DIR}/model/gcn.yaml")
    cfg.num_layers = 0
    with pytest.raises(ConfigError, match="model.num_layers"):
        build_model(cfg, 5, 2)
    cfg.num_layers, cfg.name = 2, "transformer"
    with pytest.raises(ConfigError, match="gcn, sage, gat, gin, mlp"):
        build_model(cfg, 5, 2)
