"""The training loop: Adam, full-batch or neighbour-sampled mini-batches, early stopping on validation."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.models.full_batch import full_graph_forward
from gnnrisk.train.sampler import make_node_loader

MONITORS = ("val_loss", "val_acc")


@dataclass
class FitResult:
    """What training did: epochs run, the epoch whose weights were kept, time spent, the curve."""

    epochs: int
    best_epoch: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def validate_train_cfg(cfg: DictConfig, num_layers: int | None = None) -> None:
    """Check the `train` config group; with `num_layers` (a graph model's), one fan-out per layer."""
    check_number("train.epochs", cfg.epochs, low=1, integer=True)
    check_number("train.lr", cfg.lr, low=0.0, low_open=True)
    check_number("train.weight_decay", cfg.weight_decay, low=0.0)
    check_number("train.patience", cfg.patience, low=1, integer=True)
    check_choice("train.monitor", cfg.monitor, MONITORS)
    if cfg.batch_size is not None:
        check_number("train.batch_size", cfg.batch_size, low=1, integer=True)
        fanout = cfg.num_neighbors
        if isinstance(fanout, (str, bytes)) or not hasattr(fanout, "__len__") or len(fanout) == 0:
            raise ConfigError("train.num_neighbors", fanout, "expected a list of fan-outs, one per layer "
                              "(an integer >= 1, or -1 for all neighbours)")
        for i, k in enumerate(fanout):
            if k != -1:
                check_number(f"train.num_neighbors[{i}]", k, low=1, integer=True)
        if num_layers is not None and len(fanout) != num_layers:
            raise ConfigError("train.num_neighbors", list(fanout), f"expected {num_layers} fan-outs, one per "
                              f"layer of the model (model.num_layers={num_layers}): a shorter list would "
                              "train on truncated neighbourhoods")


@torch.no_grad()
def predict_logits(model: nn.Module, data: Data, forward: Callable[[], Tensor] | None = None) -> Tensor:
    """Full-graph inference in eval mode (through `forward`, a prepared full-graph pass, when given)."""
    model.eval()
    return (forward or full_graph_forward(model, data.x, data.edge_index))()


def predict_proba(model: nn.Module, data: Data) -> Tensor:
    """Class probabilities for every node."""
    return predict_logits(model, data).softmax(dim=-1)


def _validation_score(model: nn.Module, data: Data, monitor: str,
                      forward: Callable[[], Tensor]) -> tuple[float, dict[str, float]]:
    """Score to minimise for early stopping, plus the values logged in the history."""
    logits = predict_logits(model, data, forward)
    m = data.val_mask
    loss = float(F.cross_entropy(logits[m], data.y[m]))
    acc = float((logits[m].argmax(-1) == data.y[m]).float().mean())
    return (loss if monitor == "val_loss" else -acc), {"val_loss": loss, "val_acc": acc}


def fit(model: nn.Module, data: Data, cfg: DictConfig, seed: int) -> FitResult:
    """Train `model` on `data.train_mask` and keep the weights of the best validation epoch."""
    validate_train_cfg(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = None
    if cfg.batch_size is not None:
        loader = make_node_loader(data, data.train_mask.nonzero().flatten().cpu(), cfg.num_neighbors,
                                  int(cfg.batch_size), shuffle=True, seed=seed)
    forward = full_graph_forward(model, data.x, data.edge_index)  # one prepared graph for every epoch
    best_score, best_epoch, best_state, waited = float("inf"), 0, None, 0
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, int(cfg.epochs) + 1):
        model.train()
        if loader is None:
            optimizer.zero_grad()
            out = forward()
            loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
            loss.backward()
            optimizer.step()
            train_loss = loss.item()
        else:
            total, count = 0.0, 0
            for batch in loader:
                batch = batch.to(data.x.device)
                optimizer.zero_grad()
                out = model(batch.x, batch.edge_index)[: batch.batch_size]
                loss = F.cross_entropy(out, batch.y[: batch.batch_size])
                loss.backward()
                optimizer.step()
                total += loss.item() * batch.batch_size
                count += batch.batch_size
            train_loss = total / max(count, 1)
        score, logged = _validation_score(model, data, cfg.monitor, forward)
        history.append({"epoch": epoch, "train_loss": train_loss, **logged})
        if score < best_score:
            best_score, best_epoch, waited = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(epochs=epoch, best_epoch=best_epoch, train_seconds=seconds, history=history)
