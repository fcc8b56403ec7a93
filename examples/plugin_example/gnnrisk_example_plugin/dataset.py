"""`blocks`: a stochastic block model; the block is the label, noisy block indicators are the features."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.utils import stochastic_blockmodel_graph

from gnnrisk.errors import ConfigError, check_number


def load_blocks(cfg: DictConfig, seed: int) -> Data:
    """The seeded block-model graph of `data=blocks`, with train/val/test masks."""
    n = int(check_number("data.num_nodes", cfg.num_nodes, low=4, integer=True))
    k = int(check_number("data.num_blocks", cfg.num_blocks, low=2, high=n, integer=True))
    p_in = check_number("data.p_in", cfg.p_in, low=0.0, high=1.0)
    p_out = check_number("data.p_out", cfg.p_out, low=0.0, high=1.0)
    noise = check_number("data.feature_noise", cfg.feature_noise, low=0.0)
    train = check_number("data.split.train", cfg.split.train, low=0.0, high=1.0, low_open=True)
    val = check_number("data.split.val", cfg.split.val, low=0.0, high=1.0, low_open=True)
    if train + val >= 1.0:
        raise ConfigError("data.split", {"train": train, "val": val}, "expected train + val < 1 (test is the rest)")
    generator = torch.Generator().manual_seed(seed)
    sizes = [n // k + (1 if b < n % k else 0) for b in range(k)]
    probs = torch.full((k, k), p_out)
    probs.fill_diagonal_(p_in)
    torch.manual_seed(seed)  # stochastic_blockmodel_graph draws from the global generator
    edge_index = stochastic_blockmodel_graph(sizes, probs, directed=False)
    y = torch.repeat_interleave(torch.arange(k), torch.tensor(sizes))
    x = torch.nn.functional.one_hot(y, k).float() + noise * torch.randn(n, k, generator=generator)
    order = torch.randperm(n, generator=generator)
    masks = {name: torch.zeros(n, dtype=torch.bool) for name in ("train_mask", "val_mask", "test_mask")}
    cut1, cut2 = int(train * n), int((train + val) * n)
    masks["train_mask"][order[:cut1]] = True
    masks["val_mask"][order[cut1:cut2]] = True
    masks["test_mask"][order[cut2:]] = True
    data = Data(x=x, edge_index=edge_index, y=y, num_nodes=n, **masks)
    data.name = "blocks"
    return data
