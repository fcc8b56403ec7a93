"""ProGAP: progressive aggregation perturbation with edge-level (`progap_edp`) or node-level (`progap_ndp`) DP.

Sajadmanesh & Gatica-Perez, "ProGAP: Progressive Graph Neural Networks with Differential Privacy
Guarantees", WSDM 2024 (code: github.com/sisaman/ProGAP). The model grows stage by stage:

- stage 0 trains base MLP 0 and head 0 on the node features x_0 alone;
- after stage i (i < K) the embeddings h_i = base_i(x_i) of every node are aggregated once with
  ProGAP's NAP, x_{i+1} = A normalize(h_i) + N(0, sigma^2 I) (sum over in-edges, no re-normalisation),
  and cached;
- stage i+1 trains a new base MLP on x_{i+1} and a new head on the L2-normalised jumping-knowledge
  combination (`cat` by default) of base_0(x_0), ..., base_{i+1}(x_{i+1}); the earlier bases keep
  training (the authors' default; `privacy.layerwise: true` freezes them);
- the head of stage K gives the predictions. The graph is never queried again: inference is free.

Accounting (Renyi DP, `gnnrisk.privacy.accounting`, converted at `privacy.delta`; the noise
multiplier z is calibrated so that the composed epsilon is <= the target):

- progap_edp (neighbouring graphs differ in one undirected edge {u, v}; features and labels public):
  every stage trains on public features and labels and on the already-private cached aggregations
  (post-processing), so only the K NAP aggregations are counted: RDP of K Gaussian mechanisms,
  eps(alpha) = K alpha / (2 z^2). Rows entering a sum have norm <= 1; removing {u, v} changes row u
  by normalize(h_v) and row v by normalize(h_u), so the L2 sensitivity of one aggregation is sqrt(2)
  on an undirected graph (1 on a directed one). ProGAP's paper, like GAP's, counts 1; on undirected
  graphs that under-reports, so the noise std is z * sqrt(2) here (as for `gap_edp`).
- progap_ndp (neighbouring graphs differ in one node and all its edges): out-degrees are first bounded
  at D (`gap_model.bound_out_degree`), so a node's row enters at most D sums and one aggregation has
  sensitivity sqrt(D) (as in the paper, the guarantee is with respect to the degree-bounded graph).
  Each of the K+1 stages is trained with DP-SGD (Poisson rate q, T = epochs * round(1/q) steps). A
  stage-i example is (x_0 of v, v's cached rows x_1..x_i, v's label): the cached rows are
  post-processing of the released aggregations, so each node's private data enters only its own
  example and the plain subsampled-Gaussian analysis applies (the paper's node-level analysis). One
  accountant composes K Gaussian mechanisms (std z sqrt(D), sensitivity sqrt(D)) + (K+1) T
  subsampled-Gaussian steps, one noise multiplier z shared by all parts, as the authors' code does.
  Unlike the authors' code, no stage picks its weights on validation labels (private under node-level
  DP): the last weights are kept.

`privacy.epsilon: .inf` trains ProGAP without noise (non-private ProGAP); the run reports epsilon null.

Reported beside the noise parameters: `stage{i}_val_acc`, the validation accuracy of each stage's kept
weights (in metrics.json for progap_edp, where labels are public; in the labelled diagnostics/ of
progap_ndp, where they are private), and `aggregation{k}_signal_rms` / `_snr` / `_drowned`, the noise-free
signal of each aggregation estimated from the released noisy cache (post-processing) against the noise norm
(`gnnrisk.privacy.diagnostics`); progap_ndp adds each stage's DP-SGD signal against noise.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.privacy import accounting as acc
from gnnrisk.privacy.base import Mechanism, TrainedModel
from gnnrisk.privacy.diagnostics import DpsgdTrace, aggregation_snr, param_count
from gnnrisk.privacy.gap import (calibrate_quietly, edge_level_calibration, edge_level_event, model_sizes,
                                 optional_delta, staged_history, target_epsilon)
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit, poisson_schedule
from gnnrisk.privacy.gap_model import bound_out_degree, hop_noise
from gnnrisk.privacy.progap_model import (JK_MODES, CachedProgap, ProgressiveClassifier, explainable_progap,
                                          nap)
from gnnrisk.train.loop import FitResult, fit

# (history rows, validation accuracy of the weights kept) of one trained stage
StageFit = Callable[[int, CachedProgap], tuple[list[dict[str, float]], float]]


class _Progap(Mechanism):
    """What both ProGAP variants share: config checks, the stage loop, the released model."""

    name = "progap"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.target_epsilon = target_epsilon(cfg)
        self.delta = optional_delta(cfg)
        self.hops = int(check_number("privacy.hops", cfg.hops, low=1, integer=True))
        self.base_layers = int(check_number("privacy.base_layers", cfg.base_layers, low=1, integer=True))
        self.head_layers = int(check_number("privacy.head_layers", cfg.head_layers, low=1, integer=True))
        self.jk = check_choice("privacy.jk", cfg.jk, JK_MODES)
        if not isinstance(cfg.layerwise, bool):
            raise ConfigError("privacy.layerwise", cfg.layerwise, "expected true or false")
        self.layerwise = cfg.layerwise
        self.private = math.isfinite(self.target_epsilon)

    def check_model(self, model_cfg: DictConfig) -> None:
        """ProGAP builds its own stage MLPs in place of the named model: model=gcn or sage, sizes valid."""
        model_sizes(model_cfg, f"{self.name} builds ProGAP's own stage MLPs")

    def _classifier(self, data: Data, model_cfg: DictConfig, batch_norm: bool) -> ProgressiveClassifier:
        """All K+1 stages, sized by the model config (hidden_channels, dropout)."""
        hidden, _, dropout = model_sizes(model_cfg, f"{self.name} builds ProGAP's own stage MLPs")
        return ProgressiveClassifier(data.num_features, self.hops, hidden, int(data.y.max()) + 1, self.base_layers,
                                     self.head_layers, dropout, batch_norm, self.jk,
                                     self.layerwise).to(data.x.device)

    @staticmethod
    def _noise(data: Data, hidden: int, hops: int, noise_std: float, seed: int) -> Tensor:
        """The noise of the K aggregations as [N, K, H], from a seeded generator (re-drawn to explain the model)."""
        generator = torch.Generator(device=data.x.device).manual_seed(seed + 1)
        like = torch.empty(data.num_nodes, hidden, device=data.x.device, dtype=data.x.dtype)
        return hop_noise(like, hops, noise_std, generator)

    def _progress(self, classifier: ProgressiveClassifier, data: Data, edge_index: Tensor, noise: Tensor,
                  fit_stage: StageFit) -> tuple[CachedProgap, list[dict[str, Any]], dict[str, float]]:
        """Train stage 0; before each next stage, aggregate the previous stage's embeddings once and cache them.

        Returns the released model, the history (rows tagged stage0..stageK) and the validation accuracy
        of each stage's kept weights (`stage{i}_val_acc`).
        """
        cache = data.x.new_zeros(data.num_nodes, 0, classifier.hidden_channels)
        embedders: list[nn.Module] = []
        history: list[dict[str, Any]] = []
        val_accs: dict[str, float] = {}
        for stage in range(self.hops + 1):
            if stage > 0:
                classifier.eval()
                with torch.no_grad():
                    h = classifier.embed(CachedProgap(classifier, cache).packed(data.x))
                    cache = torch.cat([cache, nap(h, edge_index, noise[:, stage - 1]).unsqueeze(1)], dim=1)
                embedders.append(copy.deepcopy(classifier.bases[stage - 1]).eval())
            classifier.set_stage(stage)
            rows, val_acc = fit_stage(stage, CachedProgap(classifier, cache))
            history += staged_history(f"stage{stage}", rows)
            val_accs[f"stage{stage}_val_acc"] = val_acc
        return CachedProgap(classifier, cache, nn.ModuleList(embedders)).eval(), history, val_accs

    def _explain_view(self, model: CachedProgap, data: Data, edge_index: Tensor, noise_std: float,
                      seed: int) -> Callable[[], tuple[nn.Module, Data]]:
        """Builds, on demand, the model that re-aggregates with the training noise (for link-level explainers)."""
        hidden = model.classifier.hidden_channels
        return lambda: explainable_progap(model, data, edge_index, self._noise(data, hidden, self.hops, noise_std,
                                                                                seed))


class ProgapEdp(_Progap):
    """ProGAP with edge-level DP: non-private stage training, K Gaussian NAP aggregations counted.

    delta defaults to 1/(10 |E|), |E| = number of undirected edges. Every stage is trained full batch
    with the `train` group (train.batch_size is not used) for `privacy.stage_epochs` epochs (null =
    train.epochs) and keeps its best validation epoch (labels are public under edge-level DP).
    """

    name = "progap_edp"
    privacy_unit = "edge"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.batch_norm = bool(cfg.batch_norm)
        if cfg.stage_epochs is not None:
            check_number("privacy.stage_epochs", cfg.stage_epochs, low=1, integer=True)

    def calibrate(self, data: Data) -> dict[str, Any]:
        """Noise std of each aggregation and the epsilon the K of them spend (as GAP-EDP's hops)."""
        return {**edge_level_calibration(self, data), "stages": self.hops + 1}

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """K Gaussian aggregations (std = noise_multiplier x sensitivity), as GAP-EDP's; None when not private."""
        return edge_level_event(privacy)

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Stage 0 on features, then one noisy aggregation and one more stage per hop."""
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        classifier = self._classifier(data, model_cfg, self.batch_norm)
        noise = self._noise(data, classifier.hidden_channels, self.hops, privacy["aggregation_noise_std"], seed)
        epochs = train_cfg.epochs if self.cfg.stage_epochs is None else self.cfg.stage_epochs
        stage_cfg = OmegaConf.merge(train_cfg, {"epochs": epochs, "batch_size": None})
        fits: list[FitResult] = []

        def fit_stage(stage: int, model: CachedProgap) -> tuple[list[dict[str, float]], float]:
            """Full-batch training with early stopping; the best validation epoch's weights are kept."""
            fits.append(fit(model, data, stage_cfg, seed + stage))
            return fits[-1].history, fits[-1].history[fits[-1].best_epoch - 1]["val_acc"]

        model, history, val_accs = self._progress(classifier, data, data.edge_index, noise, fit_stage)
        result = FitResult(epochs=fits[-1].epochs, best_epoch=fits[-1].best_epoch,
                           train_seconds=time.perf_counter() - start, history=history)
        epochs_run = {f"stage{i}_epochs": f.epochs for i, f in enumerate(fits)}
        # public labels and private aggregations only: the stage accuracies are covered by epsilon
        released = {**epochs_run, **val_accs, **aggregation_snr(model.aggregations, privacy["aggregation_noise_std"])}
        return TrainedModel(model=model, graph=data, fit=result, privacy={**privacy, **released},
                            explain_view=self._explain_view(model, data, data.edge_index,
                                                            privacy["aggregation_noise_std"], seed))


def ndp_epsilon(noise_multiplier: float, hops: int, sample_rate: float, stage_steps: int, delta: float) -> float:
    """Epsilon of K node-level Gaussian aggregations + (K+1) DP-SGD stages of `stage_steps` steps (one RDP curve)."""
    z = noise_multiplier
    # every stage shares z and q, so the DP-SGD curve is one step's times the step count (RDP is linear in it)
    curve = acc.compose(acc.rdp_gaussian(z, 1.0, steps=hops),  # std z*sqrt(D) over sensitivity sqrt(D)
                        (hops + 1) * stage_steps * acc.rdp_subsampled_gaussian(z, sample_rate, 1))
    return acc.epsilon_from_rdp(curve, delta)


class ProgapNdp(_Progap):
    """ProGAP with node-level DP: out-degree bounded at D, every stage trained with DP-SGD, one accountant.

    delta defaults to 1/(10 N). Each stage trains for `privacy.epochs` epochs with Poisson-sampled
    batches of expected size `privacy.batch_size` and keeps its last weights.
    """

    name = "progap_ndp"
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
                              "must be false for progap_ndp: Opacus cannot clip per-sample gradients through batch "
                              "norm")

    def calibrate(self, data: Data) -> dict[str, Any]:
        """The shared noise multiplier and the epsilon that the K aggregations and K+1 DP-SGD stages spend."""
        n_train = int(data.train_mask.sum())
        delta = self.delta or 1.0 / (10 * data.num_nodes)
        q, per_epoch = poisson_schedule(n_train, self.batch_size)
        stage_steps = self.epochs * per_epoch
        out = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "delta": delta, "hops": self.hops,
               "stages": self.hops + 1, "max_degree": self.max_degree,
               "aggregation_sensitivity": math.sqrt(self.max_degree), "max_grad_norm": self.max_grad_norm,
               "sample_rate": q, "stage_steps": stage_steps, "steps": (self.hops + 1) * stage_steps,
               "target_epsilon": self.target_epsilon}
        if not self.private:
            z, eps = 0.0, None
            out.update(delta=None, target_epsilon=None)
        else:
            z, eps = calibrate_quietly(
                self.target_epsilon, delta, lambda z: ndp_epsilon(z, self.hops, q, stage_steps, delta),
                context=f"with privacy.hops={self.hops}, privacy.epochs={self.epochs}, "
                        f"privacy.batch_size={self.batch_size}")
        return {**out, "epsilon": eps, "noise_multiplier": z, "aggregation_noise_std": z * math.sqrt(self.max_degree)}

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """K Gaussian aggregations, then (K+1) DP-SGD stages of Poisson-sampled Gaussian steps (one noise
        multiplier); None when not private."""
        import dp_accounting as dpa

        if privacy.get("epsilon") is None:
            return None
        z = privacy["noise_multiplier"]
        step = dpa.PoissonSampledDpEvent(privacy["sample_rate"], dpa.GaussianDpEvent(z))
        return dpa.ComposedDpEvent([dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z), privacy["hops"]),
                                    dpa.SelfComposedDpEvent(step, privacy["steps"])])

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Degree bounding, then DP-SGD stage 0, one noisy aggregation and one more DP-SGD stage per hop."""
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        classifier = self._classifier(data, model_cfg, batch_norm=False)
        noise = self._noise(data, classifier.hidden_channels, self.hops, privacy["aggregation_noise_std"], seed)
        edges = bound_out_degree(data.edge_index, data.num_nodes, self.max_degree,
                                 torch.Generator(device="cpu").manual_seed(seed + 2))
        tr, va = data.train_mask, data.val_mask
        sgd = dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                   weight_decay=float(train_cfg.weight_decay), noise_multiplier=privacy["noise_multiplier"],
                   max_grad_norm=self.max_grad_norm)

        covered: dict[str, Any] = {}
        outside: dict[str, Any] = {}

        def fit_stage(stage: int, model: CachedProgap) -> tuple[list[dict[str, float]], float]:
            """DP-SGD on (packed inputs, label) examples of the training nodes; the last weights are kept."""
            inputs = model.packed(data.x)
            trace = DpsgdTrace(privacy["noise_multiplier"], self.max_grad_norm, param_count(model.classifier))
            _, rows = dpsgd_fit(model.classifier, inputs[tr], data.y[tr], val=(inputs[va], data.y[va]),
                                seed=seed + 3 + stage, trace=trace, **sgd)
            cov, out = trace.summary(f"stage{stage}")
            covered.update(cov)
            outside.update(out)
            return rows, rows[-1]["val_acc"]

        model, history, val_accs = self._progress(classifier, data, edges, noise, fit_stage)
        result = FitResult(epochs=self.epochs, best_epoch=self.epochs, train_seconds=time.perf_counter() - start,
                           history=history)
        signal = aggregation_snr(model.aggregations, privacy["aggregation_noise_std"])
        # validation labels are private under node-level DP: the stage accuracies are diagnostics, outside epsilon
        return TrainedModel(model=model, graph=data, fit=result, privacy={**privacy, **signal, **covered},
                            diagnostics={**val_accs, **outside},
                            explain_view=self._explain_view(model, data, edges, privacy["aggregation_noise_std"],
                                                            seed))
