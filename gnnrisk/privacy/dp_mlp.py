"""DP-MLP: DP-SGD on edge-blind models, the baseline node-private graph methods must beat.

One snapshot: an MLP over node features only, trained by `gap_dpsgd.dpsgd_fit` (Opacus per-sample
gradients, Poisson sampling at q = batch_size / N_train, round(1/q) steps per epoch), the same DP-SGD as
GAP's and ProGAP's modules. The MLP never sees an edge, so removing a node removes exactly one training
example: example-level DP-SGD (Abadi et al. 2016) is node-level DP here. Noise is calibrated with the
RDP of the subsampled Gaussian (`accounting.rdp_subsampled_gaussian` over the cheap integer orders, which
can only overstate epsilon) and the reported epsilon is read over all of `accounting.ORDERS`.

Data with periods (`train_forecaster`): the edge-blind forecasters `model=lstm` (NodeLSTM) and
`model=mlp` (the MLP of each period) read a node's own history only, so one node's whole history
(features and records of every period read) is one example. Each rolling origin trains a fresh
model with DP-SGD on that origin's window (the same Poisson sampling, per-node gradients by
`torch.func.vmap`, clipping, Gaussian noise), and the privacy spent by all origins is composed
(`forecast_rdp`): the epsilon is node level over the whole horizon. No early stopping: each origin
keeps its last weights; its training/validation curve reads private labels, so the pipeline writes it
to diagnostics/ (privacy_unit node), outside epsilon. Write-up: docs/privacy_time.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.models import build_forecaster, build_model
from gnnrisk.models.recurrent import NodeLSTM, PeriodGraph, SnapshotModel
from gnnrisk.privacy import accounting
from gnnrisk.privacy.base import Mechanism, TrainedModel
from gnnrisk.privacy.diagnostics import DpsgdTrace
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit, poisson_schedule
from gnnrisk.privacy.dpsgd_node import check_privacy_target, clip_sum_noise, resolve_privacy_target
from gnnrisk.train.forecast import IGNORE, Forecast, ForecastWindow, model_inputs, window_targets
from gnnrisk.train.loop import FitResult


# ---------------------------------------------------------------------------------------------
# Data with periods: DP-SGD on edge-blind forecasters, one fresh model per rolling origin.
#
# One person's whole history (features and records of every period read) is one example: the
# LSTM (model=lstm) and the per-period MLP (model=mlp) read a node's own rows only, so removing a
# node removes one example of every origin's training set and changes no other example. Each
# origin trains a fresh model on the same people, so the privacy losses of all origins compose
# (RDP adds), and the noise is calibrated so that the total meets the target.

FORECAST_MODELS = ("mlp", "lstm")  # edge-blind on data with periods: SnapshotModel(FeatureMLP), NodeLSTM
FORECAST_ACCOUNTANT = "rdp (opacus compute_rdp), composed over origins"


def lstm_forward(params: dict[str, Tensor], x: Tensor, num_layers: int, dropout: float,
                 training: bool) -> Tensor:
    """`NodeLSTM` on one node's sequence `x` [T, F] -> logits [T, out], from its parameters (vmappable).

    The same arithmetic as `nn.LSTM` (gates i, f, g, o; both biases; dropout between layers when
    num_layers > 1) and NodeLSTM's dropout and head, written as a loop over periods so that
    `torch.func.vmap` batches it (vmap has no batching rule for nn.LSTM's fused kernel).
    """
    inp = x
    for layer in range(num_layers):
        w_hh = params[f"lstm.weight_hh_l{layer}"]
        gx = F.linear(inp, params[f"lstm.weight_ih_l{layer}"],
                      params[f"lstm.bias_ih_l{layer}"] + params[f"lstm.bias_hh_l{layer}"])
        h = c = gx.new_zeros(w_hh.size(1))
        outs = []
        for t in range(x.size(0)):  # periods, a dozen
            i, f, g, o = (gx[t] + F.linear(h, w_hh)).chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        inp = torch.stack(outs)
        if layer < num_layers - 1:
            inp = F.dropout(inp, p=dropout, training=training)
    return F.linear(F.dropout(inp, p=dropout, training=training), params["head.weight"], params["head.bias"])


def example_forward(model: nn.Module, model_cfg: DictConfig) -> Callable[[dict[str, Tensor], Tensor], Tensor]:
    """`f(params, x [T, F]) -> logits [T, out]`: the forecaster `model` on one node's history alone."""
    if isinstance(model, NodeLSTM):
        layers, p = int(model_cfg.num_layers), float(model_cfg.dropout)
        return lambda params, x: lstm_forward(params, x, layers, p, model.training)
    if isinstance(model, SnapshotModel):  # the MLP of each period: the periods are its batch
        inner, prefix = model.model, "model."
        return lambda params, x: functional_call(inner, {k[len(prefix):]: v for k, v in params.items()}, (x,))
    raise TypeError(f"no per-node forward for {type(model).__name__}")


def node_gradients(forward: Callable[[dict[str, Tensor], Tensor], Tensor], params: dict[str, Tensor], xs: Tensor,
                   targets: Tensor, num_horizons: int, count: int) -> tuple[dict[str, Tensor], Tensor]:
    """Per-node gradients ([B, ...] per parameter) and losses ([B]) of each node's own loss, by vmap.

    `xs` [B, T, F] are B nodes' histories, `targets` [B, T, H] their targets in the window (IGNORE
    outside it); a node's loss is the sum of its cross-entropies over its targets divided by `count`
    (every node has the same `count` targets in a window: the mean over them).
    """
    def loss(p: dict[str, Tensor], x: Tensor, target: Tensor) -> Tensor:
        logp = forward(p, x).unflatten(-1, (num_horizons, -1)).log_softmax(-1)
        picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return -(picked * (target != IGNORE)).sum() / count

    grads, losses = vmap(grad_and_value(loss), in_dims=(None, 0, 0), randomness="different")(params, xs, targets)
    return grads, losses


def forecast_rdp(noise_multiplier: float, sample_rate: float, steps_per_origin: int, origins: int,
                 orders=None) -> np.ndarray:
    """RDP curve of `origins` DP-SGD trainings of `steps_per_origin` Poisson-subsampled Gaussian steps each.

    Every origin's model is trained on the same people, so their curves add (RDP composition).
    """
    one = accounting.rdp_subsampled_gaussian(noise_multiplier, sample_rate, steps_per_origin, orders)
    return accounting.compose(*([one] * origins))


def calibrate_forecast_noise(epsilon: float, delta: float, sample_rate: float, steps_per_origin: int, origins: int,
                             context: str) -> float:
    """Smallest noise multiplier whose epsilon composed over all origins (`forecast_rdp`) is <= `epsilon`.

    Bisection on the cheap integer orders first (a subset of orders can only overstate epsilon), then
    refined below that on all of `accounting.ORDERS`, the orders the reported epsilon is read from
    (with few steps the best order is fractional: the integer grid overstated by 9% over 30 steps).
    """
    def spent(orders):
        return lambda sigma: accounting.epsilon_from_rdp(
            forecast_rdp(sigma, sample_rate, steps_per_origin, origins, orders), delta, orders)

    coarse, _ = accounting.calibrate_noise(epsilon, delta, spent(accounting.INTEGER_ORDERS), context=context)
    fine, _ = accounting.calibrate_noise(epsilon, delta, spent(accounting.ORDERS), context=context,
                                         low=0.5 * coarse, high=coarse)
    return fine


class DpMlp(Mechanism):
    """DP-SGD on a feature-only MLP with Opacus; privacy unit: node (= one example)."""

    name = "dp_mlp"
    privacy_unit = "node"
    temporal = True  # data with periods: `train_forecaster` (DP-SGD per origin, composed over origins)

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self._settings()
        check_privacy_target(cfg)

    def _settings(self) -> tuple[int, int, float, float]:
        """Batch size, epochs, clipping bound and learning rate from the `privacy` group, validated."""
        c = self.cfg
        return (check_number("privacy.batch_size", c.get("batch_size"), low=1, integer=True),
                check_number("privacy.epochs", c.get("epochs"), low=1, integer=True),
                check_number("privacy.max_grad_norm", c.get("max_grad_norm"), low=0.0, low_open=True),
                check_number("privacy.lr", c.get("lr"), low=0.0, low_open=True))

    def check_model(self, model_cfg: DictConfig) -> None:
        """An edge-blind model without normalisation layers: mlp (a snapshot or each period) or lstm (periods).

        It does not see the data: model=lstm on one snapshot is refused by the pipeline's data check.
        """
        if model_cfg.name not in FORECAST_MODELS:
            raise ConfigError("model.name", model_cfg.name, "privacy=dp_mlp trains edge-blind models only: "
                              "use model=mlp (one snapshot, or each period) or model=lstm (data with periods)")
        if model_cfg.get("norm") is not None:
            raise ConfigError("model.norm", model_cfg.norm, "privacy=dp_mlp needs null (batch statistics mix "
                              "examples, so per-example gradients would not be per example)")

    def check_data(self, data: Data) -> None:
        """A batch is drawn from the training nodes: `privacy.batch_size` at most their count."""
        batch_size, n = self._settings()[0], int(data.train_mask.sum())
        if batch_size > n:
            raise ConfigError("privacy.batch_size", batch_size, f"expected at most the {n} training nodes")

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Calibrate the noise to the target epsilon, train with Opacus, report the spent epsilon."""
        self.check_model(model_cfg)
        if model_cfg.name != "mlp":
            raise ConfigError("model.name", model_cfg.name, "privacy=dp_mlp on one snapshot trains model=mlp; "
                              f"{model_cfg.name} needs data with periods")
        c = self.cfg
        batch_size, epochs, max_grad_norm, lr = self._settings()
        train_mask = data.train_mask
        n = int(train_mask.sum())
        epsilon, delta = resolve_privacy_target(c, 1.0 / (10 * n), "1/(10 N_train)")
        self.check_data(data)

        q, per_epoch = poisson_schedule(n, batch_size)
        steps = epochs * per_epoch

        def spent(sigma: float, orders=accounting.INTEGER_ORDERS) -> float:
            return accounting.epsilon_from_rdp(accounting.rdp_subsampled_gaussian(sigma, q, steps, orders),
                                               delta, orders)

        sigma, _ = accounting.calibrate_noise(epsilon, delta, spent,
                                              context=f"with privacy.epochs={epochs} ({steps} steps)")
        torch.manual_seed(seed)
        model = build_model(model_cfg, data.num_features, int(data.y.max()) + 1).to(data.x.device)
        trace = DpsgdTrace(sigma, max_grad_norm, sum(p.numel() for p in model.parameters()))
        start = time.perf_counter()
        _, history = dpsgd_fit(model, data.x[train_mask], data.y[train_mask], epochs=epochs, batch_size=batch_size,
                               lr=lr, weight_decay=float(train_cfg.weight_decay), noise_multiplier=sigma,
                               max_grad_norm=max_grad_norm, val=(data.x[data.val_mask], data.y[data.val_mask]),
                               seed=seed, trace=trace)
        fit = FitResult(epochs=epochs, best_epoch=epochs, train_seconds=time.perf_counter() - start, history=history)
        covered, outside = trace.summary("dpsgd")
        return TrainedModel(model=model.eval(), graph=data, fit=fit, diagnostics=outside, privacy={
            "mechanism": self.name, "privacy_unit": self.privacy_unit, "epsilon": spent(sigma, accounting.ORDERS),
            "target_epsilon": epsilon, "delta": delta, "noise_multiplier": sigma,
            "max_grad_norm": max_grad_norm, "sample_rate": q, "batch_size": batch_size,
            "steps": steps, "accountant": "rdp (opacus compute_rdp)", **covered})

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """`steps` Poisson-subsampled Gaussian steps (one node = one example; all origins over periods)."""
        import dp_accounting as dpa

        step = dpa.PoissonSampledDpEvent(privacy["sample_rate"], dpa.GaussianDpEvent(privacy["noise_multiplier"]))
        return dpa.SelfComposedDpEvent(step, privacy["steps"])

    def train_forecaster(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, window: ForecastWindow,
                         seed: int) -> Forecast:
        """DP-SGD per rolling origin on each node's history; the noise calibrated to the total over origins.

        Every origin t draws Poisson batches of the training nodes (sample rate 1/ceil(n/B), as the
        snapshot path) for `privacy.epochs` x ceil(n/B) steps; a node's example is its history 0..t and
        its targets s + h <= t. The `train` group is not used (the `privacy` group drives the accounting);
        there is no early stopping: each origin keeps its last weights.
        """
        self.check_model(model_cfg)
        batch_size, epochs, max_grad_norm, lr = self._settings()
        train_idx = data.train_mask.nonzero().flatten()
        val_idx = data.val_mask.nonzero().flatten()
        n = train_idx.numel()
        epsilon, delta = resolve_privacy_target(self.cfg, 1.0 / (10 * n), "1/(10 N_train)")
        self.check_data(data)
        origins = len(window.origins)
        batches = -(-n // batch_size)
        sample_rate, steps_per_origin = 1.0 / batches, epochs * batches

        sigma = calibrate_forecast_noise(epsilon, delta, sample_rate, steps_per_origin, origins,
                                         context=f"with privacy.epochs={epochs} ({steps_per_origin} steps) at "
                                                 f"each of {origins} origins (eval.origins={origins})")

        plan = DpsgdPlan(steps=steps_per_origin, steps_per_epoch=batches, sample_rate=sample_rate,
                         max_grad_norm=max_grad_norm, noise_multiplier=sigma, lr=lr)
        periods = window.periods_read
        num_classes, num_h = int(data.y.max()) + 1, len(window.horizons)
        xs = model_inputs(data)[:periods]                     # [T, N, F + 1]
        by_node = xs.transpose(0, 1)                          # [N, T, F + 1]: node v's example is by_node[v]
        graphs = [PeriodGraph(data.tie_index.new_empty(2, 0), int(data.num_nodes)) for _ in range(periods)]
        probs: dict[tuple[int, int], Tensor] = {}
        fits: list[FitResult] = []
        model: nn.Module | None = None
        for origin in window.origins:  # a handful of origins
            torch.manual_seed(seed * 1000 + origin)
            model = build_forecaster(model_cfg, xs.size(-1), num_classes * num_h).to(data.x.device)
            gen = torch.Generator().manual_seed(int(seed) * 1000 + origin + 1)
            targets = window_targets(data.y, origin, window.horizons)          # [origin + 1, N, H]
            fits.append(fit_private_origin(
                model, model_cfg, plan, by_node[train_idx, : origin + 1], targets.transpose(0, 1)[train_idx],
                (xs[: origin + 1], graphs[: origin + 1], targets, val_idx), origin, gen))
            model.eval()
            with torch.no_grad():
                out = model(xs[: origin + 1], graphs[: origin + 1])[origin].unflatten(-1, (num_h, -1))
            for k, h in enumerate(window.horizons):
                probs[(origin, h)] = out[:, k].softmax(-1).cpu()
        assert model is not None
        curve = forecast_rdp(sigma, sample_rate, steps_per_origin, origins)
        privacy: dict[str, Any] = {
            "mechanism": self.name, "privacy_unit": self.privacy_unit,
            "privacy_unit_detail": f"one node: its features, records and outcome in every period read "
                                   f"(0..{periods - 1}), over all {origins} origins",
            "epsilon": accounting.epsilon_from_rdp(curve, delta), "target_epsilon": epsilon, "delta": delta,
            "epsilon_per_origin": accounting.epsilon_from_rdp(
                accounting.rdp_subsampled_gaussian(sigma, sample_rate, steps_per_origin), delta),
            "noise_multiplier": sigma, "max_grad_norm": max_grad_norm, "sample_rate": sample_rate,
            "batch_size": batch_size, "steps": steps_per_origin * origins, "steps_per_origin": steps_per_origin,
            "origins_composed": origins, "released_periods": periods, "accountant": FORECAST_ACCOUNTANT}
        return Forecast(probs=probs, fits=fits, model=model, graphs=graphs, window=window, privacy=privacy)


@dataclass(frozen=True)
class DpsgdPlan:
    """One origin's DP-SGD: `steps` Poisson-sampled steps, clipping bound C, noise multiplier sigma, Adam lr."""

    steps: int
    steps_per_epoch: int
    sample_rate: float
    max_grad_norm: float
    noise_multiplier: float
    lr: float


def fit_private_origin(model: nn.Module, model_cfg: DictConfig, plan: DpsgdPlan, train_xs: Tensor,
                       train_targets: Tensor, val_window: tuple[Tensor, list[PeriodGraph], Tensor, Tensor],
                       origin: int, generator: torch.Generator) -> FitResult:
    """`plan.steps` DP-SGD steps on the training nodes' histories `train_xs` [n, T, F] / targets [n, T, H].

    Each step: Poisson sample (each node with probability `plan.sample_rate`), per-node gradients, each
    clipped to `plan.max_grad_norm`, summed, N(0, (sigma C)^2) added, divided by the expected batch size,
    an Adam step; the last weights are kept. The history (per epoch: mean training loss of the sampled
    nodes, validation loss and accuracy from `val_window` = (xs, graphs, targets, val_idx) of the
    window) reads private labels: it is outside epsilon and selects nothing.
    """
    steps, steps_per_epoch, sample_rate = plan.steps, plan.steps_per_epoch, plan.sample_rate
    optimizer = torch.optim.Adam(model.parameters(), lr=plan.lr)
    forward = example_forward(model, model_cfg)
    n, num_h = train_xs.size(0), train_targets.size(-1)
    count = int((train_targets[0] != IGNORE).sum())
    expected_batch = sample_rate * n
    history: list[dict[str, float]] = []
    total, seen = 0.0, 0
    start = time.perf_counter()
    for step in range(1, steps + 1):
        model.train()
        chosen = (torch.rand(n, generator=generator) < sample_rate).nonzero().flatten().to(train_xs.device)
        params = {k: v.detach() for k, v in model.named_parameters()}
        if chosen.numel():
            grads, losses = node_gradients(forward, params, train_xs[chosen], train_targets[chosen], num_h, count)
            total, seen = total + float(losses.sum()), seen + chosen.numel()
        else:  # an empty Poisson batch still releases the noise
            grads = {k: v.new_zeros((0, *v.shape)) for k, v in params.items()}
        noisy = clip_sum_noise(grads, plan.max_grad_norm, plan.noise_multiplier, generator)
        for name, p in model.named_parameters():
            p.grad = noisy[name] / expected_batch
        optimizer.step()
        if step % steps_per_epoch == 0 or step == steps:
            history.append({"origin": origin, "epoch": -(-step // steps_per_epoch),
                            "train_loss": total / max(seen, 1), **_validation(model, *val_window, num_h)})
            total, seen = 0.0, 0
    epochs = -(-steps // steps_per_epoch)
    return FitResult(epochs=epochs, best_epoch=epochs, train_seconds=time.perf_counter() - start, history=history)


def _validation(model: nn.Module, xs: Tensor, graphs: list[PeriodGraph], targets: Tensor, val_idx: Tensor,
                num_h: int) -> dict[str, float]:
    """Validation loss and accuracy on the window's targets of `val_idx` (logged only, never selects)."""
    model.eval()
    with torch.no_grad():
        logits = model(xs, graphs).unflatten(-1, (num_h, -1))[:, val_idx]
    tv = targets[:, val_idx]
    valid = tv != IGNORE
    return {"val_loss": float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), tv.reshape(-1),
                                              ignore_index=IGNORE)),
            "val_acc": float((logits.argmax(-1) == tv)[valid].float().mean())}
