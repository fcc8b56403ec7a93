"""Forecasting over periods: rolling-origin training, one fresh model per origin.

At origin t a model reads periods 0..t (each period's features, recorded outcome and ties) and is
trained on every target it can know by then: the record of period s + h for inputs up to s, with
s + h <= t, on the train-mask nodes; early stopping on the val-mask nodes' targets of the same
window. It then forecasts periods t + h for every horizon h. Nothing at or after t + 1 is read in
training, so the test targets (t + h, test-mask nodes) are out of time and out of sample.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.models import build_forecaster
from gnnrisk.models.recurrent import PeriodGraph
from gnnrisk.train.loop import FitResult, validate_train_cfg

IGNORE = -100  # cross_entropy's ignore_index: a (period, horizon) whose target lies outside the window


@dataclass
class ForecastWindow:
    """The horizons forecast and the origins (last period read) at which a model is trained."""

    horizons: list[int]
    origins: list[int]

    @property
    def periods_read(self) -> int:
        """How many periods (0..last origin) any model reads: the periods a mechanism must release."""
        return max(self.origins) + 1


def validate_window(eval_cfg: DictConfig, num_periods: int) -> ForecastWindow:
    """`eval.horizons` and `eval.origins` against the data's `num_periods`; the origins are the latest ones."""
    raw = eval_cfg.get("horizons", [1])
    if isinstance(raw, (str, bytes)) or not hasattr(raw, "__len__") or len(raw) == 0:
        raise ConfigError("eval.horizons", raw, "expected a non-empty list of periods ahead, e.g. [1, 2]")
    given = [int(check_number(f"eval.horizons[{i}]", h, low=1, integer=True)) for i, h in enumerate(raw)]
    if len(set(given)) != len(given):
        raise ConfigError("eval.horizons", list(raw), "expected distinct horizons (each is forecast once), "
                          f"e.g. {sorted(set(given))}")
    horizons = sorted(given)
    longest = horizons[-1]
    # an origin t needs a training target (t >= longest) and a test target (t + longest <= T - 1)
    available = num_periods - 2 * longest
    if available < 1:
        raise ConfigError("eval.horizons", list(raw), f"a horizon of {longest} needs at least {2 * longest + 1} "
                          f"periods (data.periods={num_periods}): at most {max((num_periods - 1) // 2, 0)}")
    count = int(check_number("eval.origins", eval_cfg.get("origins", 3), low=1, integer=True))
    if count > available:
        raise ConfigError("eval.origins", count, f"expected at most {available} origins with data.periods="
                          f"{num_periods} and horizons up to {longest}")
    last = num_periods - 1 - longest
    return ForecastWindow(horizons=horizons, origins=list(range(last - count + 1, last + 1)))


def model_inputs(data: Data) -> Tensor:
    """Each period's node inputs [T, N, F + 1]: the features and the recorded outcome of that period."""
    return torch.cat([data.x.transpose(0, 1), data.y.T.unsqueeze(-1).to(data.x.dtype)], dim=-1)


def window_targets(y: Tensor, origin: int, horizons: list[int]) -> Tensor:
    """Targets [origin + 1, N, H]: y[:, s + h] for input period s, IGNORE where s + h > origin."""
    n = y.size(0)
    out = torch.full((origin + 1, n, len(horizons)), IGNORE, dtype=torch.long, device=y.device)
    for k, h in enumerate(horizons):  # horizons, a handful
        if origin - h >= 0:
            out[: origin - h + 1, :, k] = y[:, h: origin + 1].T
    return out


def _masked_loss(logits: Tensor, targets: Tensor, nodes: Tensor) -> Tensor:
    """Mean cross-entropy over the given nodes' targets inside the window."""
    lg, tg = logits[:, nodes], targets[:, nodes]
    return F.cross_entropy(lg.reshape(-1, lg.size(-1)), tg.reshape(-1), ignore_index=IGNORE)


def fit_origin(model: nn.Module, xs: Tensor, graphs: list[PeriodGraph], y: Tensor, data: Data, origin: int,
               horizons: list[int], cfg: DictConfig) -> FitResult:
    """Train `model` on the window 0..origin; keep the weights of the best validation epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xs, graphs = xs[: origin + 1], graphs[: origin + 1]
    targets = window_targets(y, origin, horizons)
    train_nodes, val_nodes = data.train_mask.nonzero().flatten(), data.val_mask.nonzero().flatten()
    num_h = len(horizons)
    best, best_epoch, best_state, waited = float("inf"), 0, None, 0
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    epoch = 0
    # Without dropout the training forward is the evaluation forward: validation scores the weights
    # before each step from it (one forward per epoch instead of two), and a new best keeps those weights.
    deterministic = not any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    tv = targets[:, val_nodes]
    valid = tv != IGNORE
    for epoch in range(1, int(cfg.epochs) + 1):
        model.train()
        optimizer.zero_grad()
        logits = model(xs, graphs).unflatten(-1, (num_h, -1))
        loss = _masked_loss(logits, targets, train_nodes)
        if not deterministic:
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                logits = model(xs, graphs).unflatten(-1, (num_h, -1))
        scored = logits.detach()[:, val_nodes]
        val_loss = float(F.cross_entropy(scored.reshape(-1, scored.size(-1)), tv.reshape(-1), ignore_index=IGNORE))
        val_acc = float((scored.argmax(-1) == tv)[valid].float().mean())
        history.append({"origin": origin, "epoch": epoch - deterministic, "train_loss": float(loss.detach()),
                        "val_loss": val_loss, "val_acc": val_acc})
        score = val_loss if cfg.monitor == "val_loss" else -val_acc
        improved = score < best
        if improved:
            best, best_epoch, waited = score, epoch - deterministic, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        if deterministic:
            loss.backward()
            optimizer.step()
        if waited >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(epochs=epoch, best_epoch=best_epoch, train_seconds=time.perf_counter() - start,
                     history=history)


@dataclass
class Forecast:
    """Rolling-origin forecasts: probabilities per (origin, horizon), the fits, the last origin's model."""

    probs: dict[tuple[int, int], Tensor]
    fits: list[FitResult]
    model: nn.Module
    graphs: list[PeriodGraph]
    window: ForecastWindow
    privacy: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def fit(self) -> FitResult:
        """One FitResult for the run: epochs and seconds summed over origins, every origin's curve."""
        return FitResult(epochs=sum(f.epochs for f in self.fits), best_epoch=self.fits[-1].best_epoch,
                         train_seconds=sum(f.train_seconds for f in self.fits),
                         history=[row for f in self.fits for row in f.history])


def rolling_origin(data: Data, edge_indices: list[Tensor], model_cfg: DictConfig, train_cfg: DictConfig,
                   window: ForecastWindow, seed: int, privacy: dict[str, Any]) -> Forecast:
    """Train one model per origin on the released graphs `edge_indices` (one per period read); forecast."""
    validate_train_cfg(train_cfg)
    n = int(data.num_nodes)
    graphs = [PeriodGraph(ei, n) for ei in edge_indices]
    xs = model_inputs(data)[: len(graphs)]
    num_classes = int(data.y.max()) + 1
    probs: dict[tuple[int, int], Tensor] = {}
    fits = []
    model: nn.Module | None = None
    for origin in window.origins:  # a handful of origins
        torch.manual_seed(seed * 1000 + origin)
        model = build_forecaster(model_cfg, xs.size(-1), num_classes * len(window.horizons)).to(data.x.device)
        fits.append(fit_origin(model, xs, graphs, data.y, data, origin, window.horizons, train_cfg))
        model.eval()
        with torch.no_grad():
            out = model(xs[: origin + 1], graphs[: origin + 1])[origin].unflatten(-1, (len(window.horizons), -1))
        for k, h in enumerate(window.horizons):
            probs[(origin, h)] = out[:, k].softmax(-1).cpu()
    assert model is not None
    return Forecast(probs=probs, fits=fits, model=model, graphs=graphs, window=window, privacy=privacy)
