"""Bad attack input is a one-line ConfigError naming the field and what is allowed."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.data import Data

from gnnrisk.attack import run_stage
from gnnrisk.errors import ConfigError
from gnnrisk.privacy import TrainedModel
from gnnrisk.train.loop import FitResult
from gnnrisk.models import build_model

MODEL = {"name": "gcn", "hidden_channels": 8, "num_layers": 2, "dropout": 0.0}
TRAIN = {"epochs": 3, "lr": 0.01, "weight_decay": 0.0, "patience": 5, "monitor": "val_loss",
         "batch_size": None, "num_neighbors": [5, 5]}
TARGET = {"privacy": {"name": "none"}, "model": MODEL, "train": TRAIN}


def _setup(inductive: bool = True) -> tuple[Data, TrainedModel]:
    """A 60-node ring graph and an untrained GCN released on it."""
    n = 60
    src = torch.arange(n)
    und = torch.stack([src, (src + 1) % n])
    data = Data(x=torch.randn(n, 3), edge_index=torch.cat([und, und.flip(0)], 1), y=torch.arange(n) % 2, name="ring")
    data.train_mask = torch.arange(n) < 30
    data.val_mask = (torch.arange(n) >= 30) & (torch.arange(n) < 45)
    data.test_mask = torch.arange(n) >= 45
    if inductive:
        data.ind_train_mask = torch.arange(n) % 2 == 0
        data.ind_test_mask = ~data.ind_train_mask
    model = build_model(OmegaConf.create(MODEL), 3, 2)
    return data, TrainedModel(model, data, FitResult(1, 1, 0.0), {"mechanism": "none", "delta": None})


def _run(cfg: dict, inductive: bool = True):
    """Run the stage with the given attack blocks, each selected (`enabled: true`, as its member file sets)."""
    data, trained = _setup(inductive)
    blocks = {name: {"enabled": True, **block} for name, block in cfg.items()}
    return run_stage(OmegaConf.create({"name": "attacks", "target": TARGET, **blocks}), data, trained, None, 0)


def test_linkteller_needs_an_inductive_split():
    """Data without ind_train_mask/ind_test_mask: the error names the attack and the missing split."""
    with pytest.raises(ConfigError, match="inductive split"):
        _run({"linkteller": {"setting": "inductive", "num_nodes": 10, "delta": 0.01, "chunk": 4}}, inductive=False)
    with pytest.raises(ConfigError, match="inductive split"):
        _run({"mia": {}}, inductive=False)


def test_more_sampled_nodes_than_exist():
    """num_nodes above the attack side's size names the field and the maximum."""
    with pytest.raises(ConfigError, match=r"attack.linkteller.num_nodes=500.*at most 30"):
        _run({"linkteller": {"setting": "inductive", "num_nodes": 500, "delta": 0.01, "chunk": 4}})
    with pytest.raises(ConfigError, match=r"attack.adjacency.num_nodes"):
        _run({"adjacency": {"num_nodes": 61}})
    with pytest.raises(ConfigError, match=r"attack.canary.num_canaries"):
        _run({"canary": {"num_canaries": 31, "delta": 0.01, "chunk": 4}})


def test_unknown_distance_and_unknown_attack():
    """An unknown distance lists the eight allowed; an unknown attack block lists the attacks."""
    with pytest.raises(ConfigError, match=r"attack.lsa.distances='manhattan'.*cosine.*sqeuclidean"):
        _run({"lsa": {"num_pairs": 10, "distances": ["manhattan"]}})
    with pytest.raises(ConfigError, match=r"attack='lira'.*lsa, mia, linkteller"):
        _run({"lira": {}})
    with pytest.raises(ConfigError, match=r"attack.linkteller.setting"):
        _run({"linkteller": {"setting": "both", "num_nodes": 10, "delta": 0.01, "chunk": 4}})


def test_settings_of_unselected_attacks_are_ignored():
    """`experiment=attacks attack=adjacency` keeps the study's linkteller settings: they must not start linkteller."""
    data, trained = _setup()
    cfg = OmegaConf.create({"name": "attacks", "target": TARGET, "adjacency": {"enabled": True, "num_nodes": 20},
                            "linkteller": {"num_nodes": 400}})
    out = run_stage(cfg, data, trained, None, 0)
    assert "attack_adjacency_eps_lower" in out and not any(k.startswith("attack_linkteller") for k in out)
    cfg = OmegaConf.create({"name": "attacks", "target": TARGET, "adjacency": {"enabled": False, "num_nodes": 20},
                            "linkteller": {"num_nodes": 400}})
    with pytest.raises(ConfigError, match="no attack selected"):
        run_stage(cfg, data, trained, None, 0)
