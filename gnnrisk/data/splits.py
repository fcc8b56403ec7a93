"""Seeded node splits: transductive train/val/test masks and an inductive (disjoint node sets) split."""

from __future__ import annotations

import torch

from gnnrisk.errors import check_number


def check_shares(train: float, val: float, field: str = "data.split") -> None:
    """Train share in (0, 1), validation share in [0, 1), together below 1 (test = the rest)."""
    check_number(f"{field}.train", train, low=0.0, high=1.0, low_open=True, high_open=True)
    check_number(f"{field}.val", val, low=0.0, high=1.0, high_open=True)
    check_number(f"{field}.train+{field}.val", train + val, high=1.0, high_open=True)


def random_masks(num_nodes: int, train: float, val: float, generator: torch.Generator,
                 field: str = "data.split") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split nodes at random into train/val/test masks with the given fractions (test = the rest)."""
    check_shares(train, val, field)
    perm = torch.randperm(num_nodes, generator=generator)
    n_train, n_val = int(round(train * num_nodes)), int(round(val * num_nodes))
    masks = []
    for lo, hi in ((0, n_train), (n_train, n_train + n_val), (n_train + n_val, num_nodes)):
        m = torch.zeros(num_nodes, dtype=torch.bool)
        m[perm[lo:hi]] = True
        masks.append(m)
    return masks[0], masks[1], masks[2]


def inductive_masks(num_nodes: int, generator: torch.Generator, fraction: float = 0.5,
                    field: str = "data.split.inductive_fraction") -> tuple[torch.Tensor, torch.Tensor]:
    """Partition nodes into two disjoint sets: a training side and a held-out side (for attacks)."""
    check_number(field, fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    perm = torch.randperm(num_nodes, generator=generator)
    side = torch.zeros(num_nodes, dtype=torch.bool)
    side[perm[: int(round(fraction * num_nodes))]] = True
    return side, ~side


def attach_splits(data, split_cfg, generator: torch.Generator) -> None:
    """Add train/val/test masks and the inductive split to `data` in place."""
    attach_random_splits(data, split_cfg.train, split_cfg.val, split_cfg.get("inductive_fraction", 0.5), generator)


def attach_random_splits(data, train: float, val: float, fraction: float, generator: torch.Generator) -> None:
    """Random train/val/test masks (shares `train`, `val`), then the inductive partition, drawn from `generator`."""
    data.train_mask, data.val_mask, data.test_mask = random_masks(data.num_nodes, train, val, generator)
    data.ind_train_mask, data.ind_test_mask = inductive_masks(data.num_nodes, generator, fraction)
