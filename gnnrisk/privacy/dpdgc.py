"""DPDGC: decoupled graph convolution with edge-level (`dpdgc_edp`) or node-level (`dpdgc_ndp`) DP.

Chien, Chen, Milenkovic et al., "Differentially Private Decoupled Graph Convolutions for Multigranular
Topology Protection", NeurIPS 2023 (code thupchnsky/dp-gnn, built on GAP). Pipeline (`dpdgc_model`):

1. encoder: one linear layer W (hidden x N, bias b) on each training node's adjacency row a_i, SELU, a
   frozen random orthogonal head; trained with DP-SGD on (a_i, y_i); W's columns projected to norm <= s;
2. release (PMA): xA = A W^T + b for every node (row i = sum of the columns W[:, j] of its in-neighbours
   j, plus b), plus Gaussian noise, once;
3. classifier: LINKX-style MLPs on [X | noisy xA]. X never passes through an aggregation.

Defect of the released code: `self.mlp_adj.state_dict()['weight'] = F.normalize(...) * norm_scale`
assigns into a fresh dict and leaves the weights unchanged, so W's columns are never bounded; its scripts
pass norm_scale=1e-8, so the release noise std is sigma * 1e-8: a practically noise-free release of
unbounded sensitivity. Here the projection is applied in place after every encoder step and before the
release (tests/privacy/test_dpdgc.py fails if it is a no-op). s = `privacy.norm_scale` (1.0): the
noise std is proportional to s, so the release's signal-to-noise does not depend on it; s only sets the
scale of xA against the encoder's learning rate and the classifier's inputs. The classifier adds xA to its
feature path, so a drowned release swamps X (CiteSeer, node level, epsilon 16: test accuracy 0.20, the
majority share); it therefore reads the release times min(1, classifier_input_noise / noise std), a public
factor (post-processing; 0.63 there). classifier_input_noise: null feeds the release as DPDGC does.

Accounting (Renyi DP; C = max_grad_norm, q = batch_size / training nodes, Poisson sampling, one noise
multiplier z = noise std / the part's worst-case L2 sensitivity, calibrated so that the composed epsilon
is <= the target; curves on `accounting.INTEGER_ORDERS`, a subset of orders that can only overstate).

dpdgc_edp, neighbouring graphs differ in one undirected edge {u, v} (features, labels, training set public):
- release: removing {u, v} moves row u by W[:, v] and row v by W[:, u], so the L2 sensitivity is sqrt(2) s
  (s on a directed graph, where j -> i moves row i only), as GAP-EDP counts; DPDGC's code counts s.
  Std z sqrt(2) s: one Gaussian mechanism.
- encoder: the edge changes the contents of m examples (rows u and v: m = 2; directed: m = 1). A changed
  example's clipped gradient moves the sum by <= 2C when sampled, so the worst case is 2mC and the noise
  std is z 2m C (encoder noise multiplier 2mz; the code's 2 sigma on a replace-one accountant is the same
  scale). Poisson sampling of changed (not added or removed) examples is not the add/remove case that
  Opacus's bound covers, so per order the smaller of two valid bounds is used (`rdp_rows_dpsgd`):
  (a) coupling: both graphs share the sampling indicators; by joint convexity of exp((a-1) D_a) a step is
      bounded by E_rho exp(a (a-1) (2 rho)^2 / (2 sigma^2)), rho ~ Binomial(m, q) sampled changed rows;
  (b) deletion and the weak triangle inequality: let R be the run on the examples minus the m changed
      ones. Against R each graph is a Poisson-subsampled Gaussian for a group of m examples (included
      with probability 1 - (1 - q)^m, moving the sum by <= mC: noise multiplier sigma / m; a mixture of
      shifts is no worse than the largest, by joint convexity). Composed over the steps and joined by
      Mironov 2017, Prop. 11: D_a(P||Q) <= (a - 1/2)/(a - 1) D_2a(P||R) + D_(2a-1)(R||Q).
  The classifier reads public X, y and the released xA: post-processing, trained with the `train` group.

dpdgc_ndp, neighbouring graphs differ in one node w and all its edges, on the graph whose out-degrees
are bounded at D (each node keeps <= D random out-edges; the guarantee is with respect to that graph, as
for GAP-NDP):
- release: column W[:, w] sits in <= D rows (w's out-neighbours), each moving by <= s: sensitivity
  sqrt(D) s (the code's sqrt(2D) s is replace-one). Row w itself is read only by w's own classifier
  example and prediction, as GAP-NDP treats a node's own hops.
- encoder: w's own example is removed (<= C) and <= D other training rows change (<= 2C each): worst case
  (2D + 1) C, noise std z (2D + 1) C. The code's 2 sqrt(D + 1) sigma would need the D + 1 gradient changes
  to be orthogonal; they share the bias and any common column, so only the linear bound holds. Bounds
  (a) with rho ~ Binomial(D, q) changed rows plus w's own row (Bernoulli(q), shift C), and (b) with
  groups of D + 1 (graph with w) and D (without), both directions.
- classifier: DP-SGD (Opacus) on examples (X_v, noisy xA_v, y_v); the noisy rows are post-processing of
  the release, so w's data enters example w only: add/remove, noise std z C (the code's 2 sigma is
  replace-one). Subsampled-Gaussian RDP (Mironov et al. 2019).
One accountant composes encoder + release + classifier. `privacy.epsilon: .inf` runs DPDGC without noise
(clipping and projection kept) and reports epsilon null.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from opacus.accountants.analysis.rdp import compute_rdp
from scipy.special import logsumexp
from scipy.stats import binom
from torch_geometric.data import Data
from torch_geometric.utils import is_undirected

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.privacy import accounting as acc
from gnnrisk.privacy.base import Mechanism, TrainedModel
from gnnrisk.privacy.diagnostics import DpsgdTrace, aggregation_snr, param_count
from gnnrisk.privacy.dpdgc_model import (AdjacencyEncoder, AdjacencyRows, CachedDpdgc, EncoderPlan, LinkxClassifier,
                                         explainable_dpdgc, train_encoder)
from gnnrisk.privacy.gap import (calibrate_quietly, edge_level_defaults, model_sizes, optional_delta, staged_history,
                                 target_epsilon)
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit, poisson_schedule
from gnnrisk.privacy.gap_model import bound_out_degree
from gnnrisk.train.loop import FitResult, fit

ORDERS = acc.INTEGER_ORDERS
ACCOUNTANT = "rdp: encoder min(coupling, deletion + weak triangle), Gaussian release, subsampled Gaussian"


def dpsgd_classifier_settings(cfg: DictConfig, name: str) -> tuple[int, float]:
    """`privacy.epochs` and `privacy.lr` of a DP-SGD classifier, checked; batch norm refused (Opacus cannot clip
    per-sample gradients through it)."""
    epochs = int(check_number("privacy.epochs", cfg.epochs, low=1, integer=True))
    lr = check_number("privacy.lr", cfg.lr, low=0.0, low_open=True)
    if cfg.get("batch_norm", False):
        raise ConfigError("privacy.batch_norm", cfg.batch_norm,
                          f"must be false for {name}: Opacus cannot clip per-sample gradients through batch norm")
    return epochs, lr


def rdp_rows_dpsgd(noise_multiplier: float, sample_rate: float, removed: int, changed: int, steps: int,
                   orders: tuple[float, ...] = ORDERS) -> np.ndarray:
    """RDP of `steps` Poisson-sampled DP-SGD steps (noise std noise_multiplier * C, clipping C) between two
    datasets that differ in `removed` examples present in one only and `changed` examples present in both
    with other contents: per order the smaller of the coupling and the deletion bounds (module docstring)."""
    z, q, a = noise_multiplier, sample_rate, np.asarray(orders, dtype=np.float64)
    if z <= 0:
        return np.full_like(a, np.inf)
    b, rho = np.arange(removed + 1), np.arange(changed + 1)
    shift = b[:, None] + 2.0 * rho[None, :]  # in units of C
    log_pmf = binom(removed, q).logpmf(b)[:, None] + binom(changed, q).logpmf(rho)[None, :]
    exponent = (a * (a - 1.0) / (2.0 * z * z))[:, None] * shift.reshape(1, -1) ** 2 + log_pmf.reshape(1, -1)
    coupling = steps * np.maximum(logsumexp(exponent, axis=1) / (a - 1.0), 0.0)

    def group(size: int, at: np.ndarray) -> np.ndarray:
        """RDP at orders `at` of deleting a group of `size` examples (Poisson, each moving the sum by <= C)."""
        return np.asarray(compute_rdp(q=1.0 - (1.0 - q) ** size, noise_multiplier=z / size, steps=steps,
                                      orders=list(at)), dtype=np.float64)

    big, small = removed + changed, changed
    if small == 0:
        return np.minimum(coupling, group(big, a))
    weight = (a - 0.5) / (a - 1.0)
    triangle = np.maximum(weight * group(big, 2 * a) + group(small, 2 * a - 1),
                          weight * group(small, 2 * a) + group(big, 2 * a - 1))
    return np.minimum(coupling, triangle)


def edp_curve(z: float, sample_rate: float, encoder_steps: int, rows_per_edge: int) -> np.ndarray:
    """RDP of dpdgc_edp: the encoder (noise multiplier 2 m z, m changed rows) and one Gaussian release."""
    return acc.compose(rdp_rows_dpsgd(2 * rows_per_edge * z, sample_rate, 0, rows_per_edge, encoder_steps),
                       acc.rdp_gaussian(z, 1.0, orders=ORDERS))


def ndp_curve(z: float, sample_rate: float, encoder_steps: int, classifier_steps: int, max_degree: int) -> np.ndarray:
    """RDP of dpdgc_ndp: encoder (noise multiplier (2D+1) z) + Gaussian release + DP-SGD classifier (z)."""
    return acc.compose(rdp_rows_dpsgd((2 * max_degree + 1) * z, sample_rate, 1, max_degree, encoder_steps),
                       acc.rdp_gaussian(z, 1.0, orders=ORDERS),
                       acc.rdp_subsampled_gaussian(z, sample_rate, classifier_steps, orders=ORDERS))


def epsilon_of(curve: np.ndarray, delta: float) -> float:
    """(epsilon, delta)-DP of an RDP curve over `ORDERS`."""
    return acc.epsilon_from_rdp(curve, delta, orders=ORDERS)


class _Dpdgc(Mechanism):
    """What both DPDGC variants share: config checks, the encoder, the release, the released model."""

    name = "dpdgc"
    batch_norm = False

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.target_epsilon = target_epsilon(cfg)
        self.delta = optional_delta(cfg)
        self.private = math.isfinite(self.target_epsilon)
        self.encoder_epochs = int(check_number("privacy.encoder_epochs", cfg.encoder_epochs, low=1, integer=True))
        self.batch_size = int(check_number("privacy.batch_size", cfg.batch_size, low=1, integer=True))
        self.max_grad_norm = check_number("privacy.max_grad_norm", cfg.max_grad_norm, low=0.0, low_open=True)
        self.encoder_lr = check_number("privacy.encoder_lr", cfg.encoder_lr, low=0.0, low_open=True)
        self.encoder_weight_decay = check_number("privacy.encoder_weight_decay", cfg.encoder_weight_decay, low=0.0)
        self.norm_scale = check_number("privacy.norm_scale", cfg.norm_scale, low=0.0, low_open=True)
        self.head_layers = int(check_number("privacy.head_layers", cfg.head_layers, low=1, integer=True))
        self.base_layers = None if cfg.base_layers is None else int(
            check_number("privacy.base_layers", cfg.base_layers, low=1, integer=True))
        self.input_noise = None if cfg.classifier_input_noise is None else check_number(
            "privacy.classifier_input_noise", cfg.classifier_input_noise, low=0.0, low_open=True)

    def check_model(self, model_cfg: DictConfig) -> None:
        """DPDGC builds its own modules: model=gcn or sage, sizes valid."""
        self._sizes(model_cfg)

    def _sizes(self, model_cfg: DictConfig) -> tuple[int, int, float]:
        """hidden (model.hidden_channels), base layers (privacy.base_layers, null = model.num_layers), dropout."""
        hidden, layers, dropout = model_sizes(model_cfg, f"{self.name} builds DPDGC's own encoder and classifier")
        return hidden, self.base_layers or layers, dropout

    def _schedule(self, data: Data) -> tuple[int, float, int]:
        """(training nodes, Poisson rate q, steps per epoch)."""
        n_train = int(data.train_mask.sum())
        return (n_train, *poisson_schedule(n_train, self.batch_size))

    def _calibrate(self, out: dict[str, Any], delta: float, curve: Callable[[float], np.ndarray],
                   parts: dict[str, Callable[[float], np.ndarray]], context: str) -> dict[str, Any]:
        """Noise multiplier z for the target (none when not private), the epsilon spent and each part's alone."""
        if not self.private:
            return {**out, "epsilon": None, "delta": None, "target_epsilon": None, "noise_multiplier": 0.0}
        z, eps = calibrate_quietly(self.target_epsilon, delta, lambda z: epsilon_of(curve(z), delta), context)
        alone = {f"{part}_epsilon_alone": epsilon_of(fn(z), delta) for part, fn in parts.items()}
        return {**out, "epsilon": eps, "delta": delta, "noise_multiplier": z, **alone}

    def _encoder(self, data: Data, rows: AdjacencyRows, hidden: int, privacy: dict[str, Any],
                 seed: int) -> tuple[AdjacencyEncoder, DpsgdTrace, list[dict[str, float]]]:
        """The encoder trained with DP-SGD on the training nodes' rows (noise multiplier from `privacy`)."""
        num_classes = int(data.y.max()) + 1
        if num_classes > hidden:
            raise ConfigError("model.hidden_channels", hidden, f"DPDGC's frozen orthogonal head needs at least "
                              f"the {num_classes} classes")
        encoder = AdjacencyEncoder(data.num_nodes, hidden, num_classes).to(data.x.device)
        sigma = privacy["encoder_noise_multiplier"]
        plan = EncoderPlan(self.encoder_epochs, self.batch_size, self.encoder_lr, self.encoder_weight_decay, sigma,
                           self.max_grad_norm, self.norm_scale)
        trace = DpsgdTrace(sigma, self.max_grad_norm, param_count(encoder))
        nodes = data.train_mask.nonzero().flatten()
        history = train_encoder(encoder, rows, nodes, data.y[nodes], plan, seed, trace)
        return encoder, trace, history

    def _release(self, encoder: AdjacencyEncoder, rows: AdjacencyRows, noise_std: float,
                 seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """xA = A W^T + b plus N(0, noise_std^2) once, its signal against noise (`aggregation_snr`), and the
        release as the classifier reads it: times min(1, classifier_input_noise / noise_std) (post-processing)."""
        clean = encoder.release(rows)
        generator = torch.Generator(device="cpu").manual_seed(seed + 1)
        released = clean + noise_std * torch.randn(clean.shape, generator=generator).to(clean.device)
        scale = 1.0 if self.input_noise is None or noise_std <= self.input_noise else self.input_noise / noise_std
        signal = aggregation_snr(released.unsqueeze(1), noise_std, "pma")
        return scale * released, {**signal, "classifier_input_scale": scale}

    def _classifier(self, data: Data, hidden: int, base_layers: int, dropout: float) -> LinkxClassifier:
        """A fresh LINKX classifier on [X | xA]."""
        return LinkxClassifier(data.num_features, hidden, int(data.y.max()) + 1, base_layers, self.head_layers,
                               dropout, self.batch_norm).to(data.x.device)

    @staticmethod
    def _view(model: CachedDpdgc, encoder: AdjacencyEncoder, rows: AdjacencyRows, data: Data,
              scale: float) -> Callable[[], tuple[torch.nn.Module, Data]]:
        """The explainer view: the model re-summing W's columns over a given graph (`ExplainableDpdgc`)."""
        return lambda: explainable_dpdgc(model, encoder, rows, data, scale)


class DpdgcEdp(_Dpdgc):
    """DPDGC with edge-level DP: DP-SGD encoder on adjacency rows + one Gaussian release; public classifier.

    delta defaults to 1/(10 |E|). The encoder keeps its last weights (its validation loss would read
    private rows, and its training loss is not written: history.csv is covered at edge level). The
    classifier is trained with the `train` group (full batch, early stopping on validation: it reads only
    public features, labels and the release).
    """

    name = "dpdgc_edp"
    privacy_unit = "edge"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.batch_norm = bool(cfg.batch_norm)
        if cfg.classifier_epochs is not None:
            check_number("privacy.classifier_epochs", cfg.classifier_epochs, low=1, integer=True)

    def calibrate(self, data: Data) -> dict[str, Any]:
        """The noise of every part and the epsilon that the encoder and the release spend together."""
        delta, factor = edge_level_defaults(data, self.delta)
        m = 2 if is_undirected(data.edge_index, num_nodes=data.num_nodes) else 1
        n_train, q, per_epoch = self._schedule(data)
        steps = self.encoder_epochs * per_epoch
        out = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "target_epsilon": self.target_epsilon,
               "sample_rate": q, "encoder_steps": steps, "rows_per_edge": m, "max_grad_norm": self.max_grad_norm,
               "norm_scale": self.norm_scale, "pma_sensitivity": factor * self.norm_scale, "accountant": ACCOUNTANT}
        out = self._calibrate(
            out, delta, lambda z: edp_curve(z, q, steps, m),
            {"encoder": lambda z: rdp_rows_dpsgd(2 * m * z, q, 0, m, steps),
             "pma": lambda z: acc.rdp_gaussian(z, 1.0, orders=ORDERS)},
            context=f"with privacy.encoder_epochs={self.encoder_epochs}, privacy.batch_size={self.batch_size}")
        z = out["noise_multiplier"]
        return {**out, "encoder_noise_multiplier": 2 * m * z, "pma_noise_std": z * out["pma_sensitivity"]}

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """DP-SGD encoder, noisy release once, classifier on [X | release]."""
        hidden, base_layers, dropout = self._sizes(model_cfg)
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        rows = AdjacencyRows.from_edges(data.edge_index, data.num_nodes)
        encoder, trace, _ = self._encoder(data, rows, hidden, privacy, seed)  # its loss reads private rows: dropped
        released, signal = self._release(encoder, rows, privacy["pma_noise_std"], seed)
        model = CachedDpdgc(self._classifier(data, hidden, base_layers, dropout), released)
        epochs = train_cfg.epochs if self.cfg.classifier_epochs is None else self.cfg.classifier_epochs
        cls_fit = fit(model, data, OmegaConf.merge(train_cfg, {"epochs": epochs, "batch_size": None}), seed)
        covered, outside = trace.summary("encoder")
        result = FitResult(epochs=cls_fit.epochs, best_epoch=cls_fit.best_epoch,
                           train_seconds=time.perf_counter() - start,
                           history=staged_history("classifier", cls_fit.history))
        return TrainedModel(model=model, graph=data, fit=result, privacy={**privacy, **covered, **signal},
                            diagnostics=outside,
                            explain_view=self._view(model, encoder, rows, data, signal["classifier_input_scale"]))


class DpdgcNdp(_Dpdgc):
    """DPDGC with node-level DP: out-degree bounded at D, DP-SGD encoder and classifier, one accountant.

    delta defaults to 1/(10 N). Both DP-SGD parts train for fixed epochs with Poisson batches of expected
    size `privacy.batch_size` and keep their last weights (no selection on private validation labels).
    """

    name = "dpdgc_ndp"
    privacy_unit = "node"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.max_degree = int(check_number("privacy.max_degree", cfg.max_degree, low=1, integer=True))
        self.epochs, self.lr = dpsgd_classifier_settings(cfg, self.name)

    def calibrate(self, data: Data) -> dict[str, Any]:
        """The shared noise multiplier and the epsilon the three composed parts spend."""
        d = self.max_degree
        delta = self.delta or 1.0 / (10 * data.num_nodes)
        n_train, q, per_epoch = self._schedule(data)
        enc_steps, cls_steps = self.encoder_epochs * per_epoch, self.epochs * per_epoch
        out = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "target_epsilon": self.target_epsilon,
               "max_degree": d, "sample_rate": q, "encoder_steps": enc_steps, "classifier_steps": cls_steps,
               "max_grad_norm": self.max_grad_norm, "norm_scale": self.norm_scale,
               "pma_sensitivity": math.sqrt(d) * self.norm_scale, "accountant": ACCOUNTANT}
        out = self._calibrate(
            out, delta, lambda z: ndp_curve(z, q, enc_steps, cls_steps, d),
            {"encoder": lambda z: rdp_rows_dpsgd((2 * d + 1) * z, q, 1, d, enc_steps),
             "pma": lambda z: acc.rdp_gaussian(z, 1.0, orders=ORDERS),
             "classifier": lambda z: acc.rdp_subsampled_gaussian(z, q, cls_steps, orders=ORDERS)},
            context=f"with privacy.encoder_epochs={self.encoder_epochs}, privacy.epochs={self.epochs}, "
                    f"privacy.batch_size={self.batch_size}, privacy.max_degree={d}")
        z = out["noise_multiplier"]
        return {**out, "encoder_noise_multiplier": (2 * d + 1) * z, "classifier_noise_multiplier": z,
                "pma_noise_std": z * out["pma_sensitivity"]}

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Degree bounding, DP-SGD encoder, noisy release once, DP-SGD classifier on [X | release]."""
        hidden, base_layers, dropout = self._sizes(model_cfg)
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        edges = bound_out_degree(data.edge_index, data.num_nodes, self.max_degree,
                                 torch.Generator(device="cpu").manual_seed(seed + 2))
        rows = AdjacencyRows.from_edges(edges, data.num_nodes)
        encoder, enc_trace, enc_hist = self._encoder(data, rows, hidden, privacy, seed)
        released, signal = self._release(encoder, rows, privacy["pma_noise_std"], seed)
        classifier = self._classifier(data, hidden, base_layers, dropout)
        inputs, tr, va = torch.cat([data.x, released], dim=1), data.train_mask, data.val_mask
        cls_trace = DpsgdTrace(privacy["noise_multiplier"], self.max_grad_norm, param_count(classifier))
        _, cls_hist = dpsgd_fit(classifier, inputs[tr], data.y[tr], epochs=self.epochs, batch_size=self.batch_size,
                                lr=self.lr, weight_decay=float(train_cfg.weight_decay),
                                noise_multiplier=privacy["noise_multiplier"], max_grad_norm=self.max_grad_norm,
                                val=(inputs[va], data.y[va]), seed=seed + 3, trace=cls_trace)
        (enc_cov, enc_out), (cls_cov, cls_out) = enc_trace.summary("encoder"), cls_trace.summary("classifier")
        model = CachedDpdgc(classifier, released).eval()
        result = FitResult(epochs=self.epochs, best_epoch=self.epochs, train_seconds=time.perf_counter() - start,
                           history=staged_history("encoder", enc_hist) + staged_history("classifier", cls_hist))
        return TrainedModel(model=model, graph=data, fit=result, privacy={**privacy, **enc_cov, **signal, **cls_cov},
                            diagnostics={**enc_out, **cls_out},
                            explain_view=self._view(model, encoder, rows, data, signal["classifier_input_scale"]))
