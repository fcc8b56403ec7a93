"""GAP: aggregation perturbation with edge-level (`gap_edp`) or node-level (`gap_ndp`) DP.

Sajadmanesh et al., "GAP: Differentially Private Graph Neural Networks with Aggregation
Perturbation", USENIX Security 2023. Three modules, trained one after the other:

1. encoder: an MLP over features and labels, no edges; its outputs are L2-normalised row-wise;
2. aggregation: K hops of hop_k = normalize(A hop_{k-1} + N(0, sigma^2 I)), computed once and cached;
3. classifier: one MLP per hop on the cached hops, concatenated, then a head MLP.

Accounting (Renyi DP, `gnnrisk.privacy.accounting`, converted at `privacy.delta`):

- gap_edp (neighbouring graphs differ in one undirected edge {u, v}; features and labels public):
  the encoder and classifier only touch public data or the already-private aggregations
  (post-processing), so only the K aggregation hops are counted. Rows entering a hop have norm
  <= 1; removing {u, v} changes row u by x_v and row v by x_u, so the L2 sensitivity of one hop
  is sqrt(2) on an undirected graph (1 on a directed one, where an edge j -> i changes row i only).
  GAP's paper counts 1 per hop; on undirected graphs that under-reports, so we count sqrt(2).
- gap_ndp (neighbouring graphs differ in one node and all its edges): out-degrees are first bounded
  at D (each node keeps at most D random out-edges), so a node's row enters at most D sums and one
  hop has sensitivity sqrt(D) (GAP, Lemma on node-level sensitivity; as in the paper, the
  guarantee holds with respect to the degree-bounded graph). One accountant composes: DP-SGD on the
  encoder (Poisson rate q, encoder steps) + K Gaussian mechanisms of sensitivity sqrt(D) + DP-SGD on
  the classifier (same q, classifier steps). A classifier example is (hop 0 of node v, v's cached
  noisy hops, v's label): the hops 1..K are post-processing of the released aggregations, so each
  node's private data enters only its own example, and the plain DP-SGD analysis applies (as in
  GAP's node-level analysis). One noise multiplier z is shared by all parts (aggregation std = z * sqrt(D)),
  calibrated so that the composed epsilon is <= the target.

`privacy.epsilon: .inf` trains GAP without noise (non-private GAP, GAP's `gap-inf`); the run then
reports epsilon null.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import Data
from torch_geometric.utils import is_undirected

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.privacy import accounting as acc
from gnnrisk.privacy.base import Mechanism, TrainedModel
from gnnrisk.privacy.diagnostics import DpsgdTrace, aggregation_snr, param_count
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit, poisson_schedule
from gnnrisk.privacy.gap_model import (CachedGap, GapClassifier, GapEncoder, bound_out_degree,
                                       explainable_gap, perturbed_aggregations)
from gnnrisk.train.loop import FitResult, fit

# GAP replaces message passing by its own perturbed sum aggregation and builds its own MLPs from
# model.hidden_channels / num_layers / dropout; these model names select that decoupled architecture.
SUPPORTED_MODELS = ("gcn", "sage")


def target_epsilon(cfg: DictConfig) -> float:
    """The target epsilon: a positive number (inf = no noise)."""
    return check_number("privacy.epsilon", cfg.epsilon, low=0.0, low_open=True)


def optional_delta(cfg: DictConfig) -> float | None:
    """`privacy.delta` in (0, 1), or None when null (each variant then uses its documented default)."""
    if cfg.delta is None:
        return None
    return check_number("privacy.delta", cfg.delta, low=0.0, high=1.0, low_open=True, high_open=True)


def model_sizes(model_cfg: DictConfig, builds: str) -> tuple[int, int, float]:
    """hidden_channels, num_layers and dropout from the `model` group (model.name must be supported).

    `builds` starts the error message: what the mechanism builds in place of the named model.
    """
    if model_cfg.name not in SUPPORTED_MODELS:
        raise ConfigError("model.name", model_cfg.name,
                          f"{builds} and supports model={' or model='.join(SUPPORTED_MODELS)} "
                          "(sizes from model.hidden_channels, num_layers, dropout)")
    # GAP's own MLPs (SELU, batch norm from privacy.batch_norm) read no other model setting: refuse a changed one
    for key, default in (("act", "relu"), ("input_dropout", 0.0), ("norm", None), ("jk", None)):
        if model_cfg.get(key, default) != default:
            raise ConfigError(f"model.{key}", model_cfg.get(key), f"{builds}, which do not use model.{key}: "
                              f"keep the default ({default})")
    hidden = int(check_number("model.hidden_channels", model_cfg.hidden_channels, low=1, integer=True))
    layers = int(check_number("model.num_layers", model_cfg.num_layers, low=1, integer=True))
    dropout = check_number("model.dropout", model_cfg.dropout, low=0.0, high=1.0, high_open=True)
    return hidden, layers, dropout


def edge_level_defaults(data: Data, delta: float | None) -> tuple[float, float]:
    """(delta, per-aggregation L2 sensitivity) under edge-level DP: delta defaults to 1/(10 |E|), |E| the
    undirected edges; the sensitivity is sqrt(2) on an undirected graph (one edge moves two rows), else 1."""
    delta = delta or 1.0 / (10 * max(1, data.edge_index.size(1) // 2))
    sensitivity = math.sqrt(2.0) if is_undirected(data.edge_index, num_nodes=data.num_nodes) else 1.0
    return delta, sensitivity


class _Gap(Mechanism):
    """What both GAP variants share: config checks, the three modules, the released model."""

    name = "gap"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.target_epsilon = target_epsilon(cfg)
        self.delta = optional_delta(cfg)
        self.hops = int(check_number("privacy.hops", cfg.hops, low=1, integer=True))
        self.encoder_epochs = int(check_number("privacy.encoder_epochs", cfg.encoder_epochs, low=1, integer=True))
        self.base_layers = int(check_number("privacy.base_layers", cfg.base_layers, low=1, integer=True))
        self.head_layers = int(check_number("privacy.head_layers", cfg.head_layers, low=1, integer=True))
        self.private = math.isfinite(self.target_epsilon)

    def check_model(self, model_cfg: DictConfig) -> None:
        """GAP builds its own modules in place of the named model: model=gcn or sage, sizes valid."""
        model_sizes(model_cfg, f"{self.name} builds GAP's own encoder/aggregation/classifier")

    def _modules(self, data: Data, model_cfg: DictConfig, batch_norm: bool) -> tuple[GapEncoder, GapClassifier]:
        """A fresh encoder and classifier sized by the model config."""
        hidden, layers, dropout = model_sizes(model_cfg,
                                              f"{self.name} builds GAP's own encoder/aggregation/classifier")
        num_classes = int(data.y.max()) + 1
        encoder = GapEncoder(data.num_features, hidden, num_classes, layers, dropout, batch_norm).to(data.x.device)
        classifier = GapClassifier(self.hops, hidden, num_classes, self.base_layers, self.head_layers,
                                   dropout, batch_norm).to(data.x.device)
        return encoder, classifier

    def _aggregate(self, encoder: GapEncoder, data: Data, edge_index: torch.Tensor, noise_std: float,
                   seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """Run the frozen encoder on every node, then the K noisy hops once: the cache, and each hop's
        signal against its noise (`diagnostics.aggregation_snr`, read from the released noisy sums)."""
        encoder.eval()
        released: list[torch.Tensor] = []
        with torch.no_grad():
            cache = perturbed_aggregations(encoder.embed(data.x), edge_index, self.hops, noise_std,
                                           self._noise_generator(data, seed), released)
        return cache, aggregation_snr(torch.stack(released, dim=1), noise_std, "hop")

    @staticmethod
    def _noise_generator(data: Data, seed: int) -> torch.Generator:
        """The generator of the aggregation noise (re-created to explain the model with the same noise)."""
        return torch.Generator(device=data.x.device).manual_seed(seed + 1)

    def _explain_view(self, model: CachedGap, data: Data, edge_index: torch.Tensor, noise_std: float,
                      seed: int) -> Callable[[], tuple[torch.nn.Module, Data]]:
        """Builds, on demand, the model that re-aggregates with the training noise (for link-level explainers)."""
        return lambda: explainable_gap(model, data, edge_index, noise_std, self._noise_generator(data, seed))


def calibrate_quietly(target: float, delta: float, epsilon_fn: Callable[[float], float],
                      context: str) -> tuple[float, float]:
    """`accounting.calibrate_noise`, without Opacus's warnings about trial noise levels off the order grid."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return acc.calibrate_noise(target, delta, epsilon_fn, context=context)


def staged_history(stage: str, history: list[dict[str, float]]) -> list[dict[str, Any]]:
    """History rows tagged with the module or stage they belong to (e.g. encoder, classifier)."""
    return [{"stage": stage, **row} for row in history]


class GapEdp(_Gap):
    """GAP with edge-level DP: non-private encoder and classifier, K Gaussian aggregation hops counted.

    delta defaults to 1/(10 |E|), |E| = number of undirected edges. The classifier is trained with
    the `train` group (full batch: train.batch_size is not used; early stopping on validation is
    allowed because features and labels are public under edge-level DP); the encoder likewise for
    `privacy.encoder_epochs` epochs.
    """

    name = "gap_edp"
    privacy_unit = "edge"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.batch_norm = bool(cfg.batch_norm)
        if cfg.classifier_epochs is not None:
            check_number("privacy.classifier_epochs", cfg.classifier_epochs, low=1, integer=True)

    def calibrate(self, data: Data) -> dict[str, Any]:
        """Noise std of each hop and the epsilon it spends (RDP of K Gaussian mechanisms)."""
        return edge_level_calibration(self, data)

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """K Gaussian aggregations (std = noise_multiplier x sensitivity); None when not private."""
        return edge_level_event(privacy)

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Encoder on features, K noisy hops once, classifier on the cached hops."""
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        encoder, classifier = self._modules(data, model_cfg, self.batch_norm)
        enc_cfg = OmegaConf.merge(train_cfg, {"epochs": self.encoder_epochs, "batch_size": None})
        enc_fit = fit(encoder, data, enc_cfg, seed)
        cache, signal = self._aggregate(encoder, data, data.edge_index, privacy["aggregation_noise_std"], seed)
        privacy.update(signal)
        model = CachedGap(encoder, classifier, cache)
        epochs = train_cfg.epochs if self.cfg.classifier_epochs is None else self.cfg.classifier_epochs
        cls_fit = fit(model, data, OmegaConf.merge(train_cfg, {"epochs": epochs, "batch_size": None}), seed)
        result = FitResult(epochs=cls_fit.epochs, best_epoch=cls_fit.best_epoch,
                           train_seconds=time.perf_counter() - start,
                           history=staged_history("encoder", enc_fit.history)
                           + staged_history("classifier", cls_fit.history))
        return TrainedModel(model=model, graph=data, fit=result,
                            privacy={**privacy, "encoder_epochs": enc_fit.epochs},
                            explain_view=self._explain_view(model, data, data.edge_index,
                                                            privacy["aggregation_noise_std"], seed))


def edge_level_calibration(mechanism: Mechanism, data: Data) -> dict[str, Any]:
    """The privacy fields of K Gaussian aggregations under edge-level DP (GAP-EDP, ProGAP-EDP).

    `mechanism` provides name, privacy_unit, hops, target_epsilon, private and delta. The noise
    multiplier is calibrated so that the K aggregations spend at most the target; not private:
    no noise and epsilon null.
    """
    m = mechanism
    delta, sensitivity = edge_level_defaults(data, m.delta)
    out = {"mechanism": m.name, "privacy_unit": m.privacy_unit, "delta": delta, "hops": m.hops,
           "aggregation_sensitivity": sensitivity, "target_epsilon": m.target_epsilon}
    if not m.private:
        return {**out, "epsilon": None, "delta": None, "target_epsilon": None,
                "noise_multiplier": 0.0, "aggregation_noise_std": 0.0}
    z, eps = calibrate_quietly(m.target_epsilon, delta, lambda z: edp_epsilon(z, m.hops, delta),
                               context=f"with privacy.hops={m.hops}, privacy.delta={delta:g}")
    return {**out, "epsilon": eps, "noise_multiplier": z, "aggregation_noise_std": z * sensitivity}


def edge_level_event(privacy: dict[str, Any]) -> Any:
    """The DpEvent of K Gaussian aggregations under edge-level DP (GAP-EDP, ProGAP-EDP); None when not private."""
    import dp_accounting as dpa

    if privacy.get("epsilon") is None:
        return None
    return dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(privacy["noise_multiplier"]), privacy["hops"])


def edp_epsilon(noise_multiplier: float, hops: int, delta: float) -> float:
    """Epsilon of K Gaussian hops with std = noise_multiplier * sensitivity (RDP, Balle et al. conversion)."""
    return acc.epsilon_from_rdp(acc.rdp_gaussian(noise_multiplier, 1.0, steps=hops), delta)


class GapNdp(_Gap):
    """GAP with node-level DP: out-degree bounded at D, DP-SGD encoder and classifier, one accountant.

    delta defaults to 1/(10 N). Both modules train for a fixed number of epochs with Poisson-sampled
    batches of expected size `privacy.batch_size` and keep their last weights (no selection on
    validation labels, which are private under node-level DP).
    """

    name = "gap_ndp"
    privacy_unit = "node"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.max_degree = int(check_number("privacy.max_degree", cfg.max_degree, low=1, integer=True))
        self.max_grad_norm = check_number("privacy.max_grad_norm", cfg.max_grad_norm, low=0.0, low_open=True)
        self.batch_size = int(check_number("privacy.batch_size", cfg.batch_size, low=1, integer=True))
        self.epochs = int(check_number("privacy.epochs", cfg.epochs, low=1, integer=True))
        self.lr = check_number("privacy.lr", cfg.lr, low=0.0, low_open=True)
        if cfg.get("batch_norm", False):
            raise ConfigError("privacy.batch_norm", cfg.batch_norm,
                              "must be false for gap_ndp: Opacus cannot clip per-sample gradients through batch norm")

    def calibrate(self, data: Data) -> dict[str, Any]:
        """The shared noise multiplier and the epsilon the three composed parts spend."""
        n_train = int(data.train_mask.sum())
        delta = self.delta or 1.0 / (10 * data.num_nodes)
        q, per_epoch = poisson_schedule(n_train, self.batch_size)
        enc_steps, cls_steps = self.encoder_epochs * per_epoch, self.epochs * per_epoch
        out = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "delta": delta, "hops": self.hops,
               "max_degree": self.max_degree, "aggregation_sensitivity": math.sqrt(self.max_degree),
               "max_grad_norm": self.max_grad_norm, "sample_rate": q, "encoder_steps": enc_steps,
               "classifier_steps": cls_steps, "target_epsilon": self.target_epsilon}
        if not self.private:
            z, eps = 0.0, None
            out.update(delta=None, target_epsilon=None)
        else:
            z, eps = calibrate_quietly(
                self.target_epsilon, delta,
                lambda z: ndp_epsilon(z, self.hops, q, enc_steps, cls_steps, delta),
                context=f"with privacy.encoder_epochs={self.encoder_epochs}, privacy.epochs={self.epochs}, "
                        f"privacy.batch_size={self.batch_size}")
        return {**out, "epsilon": eps, "noise_multiplier": z, "encoder_noise_multiplier": z,
                "classifier_noise_multiplier": z, "aggregation_noise_std": z * math.sqrt(self.max_degree)}

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """DP-SGD encoder steps, K Gaussian hops, DP-SGD classifier steps (one noise multiplier); None if not private."""
        import dp_accounting as dpa

        if privacy.get("epsilon") is None:
            return None
        z, q = privacy["noise_multiplier"], privacy["sample_rate"]
        step = dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z))
        return dpa.ComposedDpEvent([dpa.SelfComposedDpEvent(step, privacy["encoder_steps"]),
                                    dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z), privacy["hops"]),
                                    dpa.SelfComposedDpEvent(step, privacy["classifier_steps"])])

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """DP-SGD encoder, degree-bounded noisy hops once, DP-SGD classifier on the cached hops."""
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        encoder, classifier = self._modules(data, model_cfg, batch_norm=False)
        tr, va = data.train_mask, data.val_mask
        sgd = dict(batch_size=self.batch_size, lr=self.lr, weight_decay=float(train_cfg.weight_decay),
                   noise_multiplier=privacy["noise_multiplier"], max_grad_norm=self.max_grad_norm)
        enc_trace, cls_trace = (DpsgdTrace(privacy["noise_multiplier"], self.max_grad_norm, param_count(m))
                                for m in (encoder, classifier))
        _, enc_hist = dpsgd_fit(encoder, data.x[tr], data.y[tr], epochs=self.encoder_epochs,
                                val=(data.x[va], data.y[va]), seed=seed, trace=enc_trace, **sgd)
        generator = torch.Generator(device="cpu").manual_seed(seed + 2)
        edges = bound_out_degree(data.edge_index, data.num_nodes, self.max_degree, generator)
        cache, signal = self._aggregate(encoder, data, edges, privacy["aggregation_noise_std"], seed)
        _, cls_hist = dpsgd_fit(classifier, cache[tr], data.y[tr], epochs=self.epochs,
                                val=(cache[va], data.y[va]), seed=seed + 3, trace=cls_trace, **sgd)
        (enc_cov, enc_out), (cls_cov, cls_out) = enc_trace.summary("encoder"), cls_trace.summary("classifier")
        model = CachedGap(encoder, classifier, cache).eval()
        result = FitResult(epochs=self.epochs, best_epoch=self.epochs, train_seconds=time.perf_counter() - start,
                           history=staged_history("encoder", enc_hist) + staged_history("classifier", cls_hist))
        return TrainedModel(model=model, graph=data, fit=result,
                            privacy={**privacy, **enc_cov, **signal, **cls_cov}, diagnostics={**enc_out, **cls_out},
                            explain_view=self._explain_view(model, data, edges, privacy["aggregation_noise_std"],
                                                            seed))


def ndp_epsilon(noise_multiplier: float, hops: int, sample_rate: float, encoder_steps: int,
                classifier_steps: int, delta: float) -> float:
    """Epsilon of DP-SGD encoder + K node-level Gaussian hops + DP-SGD classifier, one RDP accountant."""
    z = noise_multiplier
    # both DP-SGD modules share z and q, so their curves differ only by the step count (RDP is linear in it)
    sgd_step = acc.rdp_subsampled_gaussian(z, sample_rate, 1)
    curve = acc.compose(encoder_steps * sgd_step,
                        acc.rdp_gaussian(z, 1.0, steps=hops),  # std z*sqrt(D) over sensitivity sqrt(D)
                        classifier_steps * sgd_step)
    return acc.epsilon_from_rdp(curve, delta)
