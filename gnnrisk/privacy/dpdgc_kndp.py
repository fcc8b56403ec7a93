"""DPDGC with k-neighbour-level DP (`dpdgc_kndp`): one node's features and label and up to k of its edges.

Chien, Chen, Milenkovic et al., NeurIPS 2023 (code thupchnsky/dp-gnn, `KNeighborPrivDPDGC`); the pipeline
and what it shares with dpdgc_edp / dpdgc_ndp are in `gnnrisk.privacy.dpdgc` (module docstring).

Neighbouring graphs (the paper's k-neighbour-level adjacency, as its released code accounts it: the
classifier is trained with DP-SGD and "the node to be replaced" is left to it): same node set; one node w
has other features and another label, and up to k edges incident to w are added or removed (rewiring an
edge is two changes). Nothing else differs; no degree bound is needed. k >= 1 contains the edge-level
relation (one edge {u, v}: take w = u, k = 1), so the run is edge-level DP at the same (epsilon, delta) and
reports `privacy_unit: "edge"`, with the relation in words in `privacy_unit_detail`; it is stronger: the
features and label of a node are private too (dpdgc_edp treats them as public), and so are k of its links
at once (group privacy at edge level would pay about k times the epsilon). It is not node-level DP: a node
with more than k edges cannot be removed within it.

- release (one Gaussian mechanism; W is fixed by then, DP by the encoder's DP-SGD): on an undirected graph
  each changed edge {w, j} moves row j by the column W[:, w] (<= s) and row w by W[:, j] (<= s); k of them
  move row w by <= k s and k other rows by <= s each: L2 sensitivity sqrt(k^2 + k) s = sqrt(k (k+1)) s
  (sqrt(2) s at k = 1, as dpdgc_edp). Directed (j -> i moves row i only): k_in edges into w move row w by
  <= k_in s, k_out edges out of w move k_out rows by <= s: sqrt(k_in^2 + k_out) s <= k s. DPDGC's code
  counts sqrt(k) s: it leaves row w out (the paper's graph DP does not protect w's own prediction), which
  would not cover the edge-level relation here, where both end points' predictions are protected.
- encoder (DP-SGD on (a_i, y_i)): example w changes (its row and its label) and so does the row of each
  other end point of a changed edge: <= k + 1 changed examples (directed: w plus k_out), each moving the
  clipped sum by <= 2C: worst case 2 (k+1) C, noise std z 2 (k+1) C, bounded per order by
  `dpdgc.rdp_rows_dpsgd` (changed = k + 1, removed = 0). The code's 2 sqrt(k+1) sigma assumes the k + 1
  changes orthogonal; they share the bias and any common column (see the dpdgc_ndp note).
- classifier (DP-SGD on (X_v, noisy xA_v, y_v)): the noisy rows are post-processing of the release, so only
  example w changes (features and label): one changed example, shift <= 2C, noise std z 2C, bounded by
  `rdp_rows_dpsgd` (changed = 1): the replace-one count, as the code's factor 2.
One accountant composes the three with one z. At k = 1 on an undirected graph the encoder and the release
are exactly dpdgc_edp's (m = 2 changed rows, sqrt(2) s), so dpdgc_kndp(k=1) = dpdgc_edp + the classifier's
DP-SGD: never cheaper (at a target epsilon its z is at least dpdgc_edp's). The code's kndp uses no degree
bound either; its k = 0 (features and label only) is not offered here: it protects no edge.

Training-time records: the encoder's and the classifier's losses read private labels (and rows), and the
pipeline files an edge-level run's curve as covered (`gnnrisk.results.outside_budget` reads `privacy_unit`);
so this mechanism writes no curve (history empty) and its DP-SGD diagnostics outside epsilon are dropped,
as dpdgc_edp's encoder curve is. Both DP-SGD parts keep their last weights (no selection on validation).
delta defaults to 1/(10 |E|), the edge-level default, so that the run sits with the edge-level rows.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.utils import is_undirected

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.privacy import accounting as acc
from gnnrisk.privacy.base import TrainedModel
from gnnrisk.privacy.diagnostics import DpsgdTrace, param_count
from gnnrisk.privacy.dpdgc import ACCOUNTANT, ORDERS, _Dpdgc, dpsgd_classifier_settings, rdp_rows_dpsgd
from gnnrisk.privacy.dpdgc_model import AdjacencyRows, CachedDpdgc
from gnnrisk.privacy.gap import edge_level_defaults
from gnnrisk.privacy.gap_dpsgd import dpsgd_fit
from gnnrisk.train.loop import FitResult


def release_sensitivity(k: int, undirected: bool) -> float:
    """L2 sensitivity of xA (in units of s) when up to k edges incident to one node change (module docstring)."""
    return math.sqrt(k * (k + 1)) if undirected else float(k)


def kndp_curve(z: float, sample_rate: float, encoder_steps: int, classifier_steps: int, k: int) -> np.ndarray:
    """RDP of dpdgc_kndp: encoder (k + 1 changed rows, noise multiplier 2 (k+1) z) + one Gaussian release +
    DP-SGD classifier (one changed example, noise multiplier 2 z)."""
    return acc.compose(rdp_rows_dpsgd(2 * (k + 1) * z, sample_rate, 0, k + 1, encoder_steps),
                       acc.rdp_gaussian(z, 1.0, orders=ORDERS),
                       rdp_rows_dpsgd(2 * z, sample_rate, 0, 1, classifier_steps))


def unit_detail(k: int) -> str:
    """The neighbouring relation in words (metrics.json `privacy_unit_detail`)."""
    edges = "1 edge" if k == 1 else f"{k} edges"
    return (f"k-neighbour (k={k}): one node's features and label and up to {edges} incident to it, each added "
            f"or removed; contains edge level (one edge, features and labels public) at the same epsilon and delta")


class DpdgcKndp(_Dpdgc):
    """DPDGC with k-neighbour-level DP: DP-SGD encoder, one Gaussian release, DP-SGD classifier, one accountant.

    Reported as edge-level (`privacy_unit` "edge"; the relation in `privacy_unit_detail`): it implies
    edge-level DP at the same (epsilon, delta) and also protects one node's features and label.
    """

    name = "dpdgc_kndp"
    privacy_unit = "edge"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.k = int(check_number("privacy.k", cfg.k, low=1, integer=True))
        self.epochs, self.lr = dpsgd_classifier_settings(cfg, self.name)

    def check_data(self, data: Data) -> None:
        """k at most N - 1: a node has no more possible incident edges."""
        if self.k > data.num_nodes - 1:
            raise ConfigError("privacy.k", self.k, f"expected an integer in [1, {data.num_nodes - 1}]: a node of this "
                              f"{data.num_nodes}-node graph has at most {data.num_nodes - 1} incident edges")

    def calibrate(self, data: Data) -> dict[str, Any]:
        """The shared noise multiplier and the epsilon the encoder, the release and the classifier spend."""
        self.check_data(data)
        k = self.k
        delta, _ = edge_level_defaults(data, self.delta)
        undirected = is_undirected(data.edge_index, num_nodes=data.num_nodes)
        _, q, per_epoch = self._schedule(data)
        enc_steps, cls_steps = self.encoder_epochs * per_epoch, self.epochs * per_epoch
        out = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "privacy_unit_detail": unit_detail(k),
               "target_epsilon": self.target_epsilon, "k": k, "rows_per_change": k + 1, "sample_rate": q,
               "encoder_steps": enc_steps, "classifier_steps": cls_steps, "max_grad_norm": self.max_grad_norm,
               "norm_scale": self.norm_scale, "pma_sensitivity": release_sensitivity(k, undirected) * self.norm_scale,
               "accountant": ACCOUNTANT}
        out = self._calibrate(
            out, delta, lambda z: kndp_curve(z, q, enc_steps, cls_steps, k),
            {"encoder": lambda z: rdp_rows_dpsgd(2 * (k + 1) * z, q, 0, k + 1, enc_steps),
             "pma": lambda z: acc.rdp_gaussian(z, 1.0, orders=ORDERS),
             "classifier": lambda z: rdp_rows_dpsgd(2 * z, q, 0, 1, cls_steps)},
            context=f"with privacy.encoder_epochs={self.encoder_epochs}, privacy.epochs={self.epochs}, "
                    f"privacy.batch_size={self.batch_size}, privacy.k={k}")
        z = out["noise_multiplier"]
        return {**out, "encoder_noise_multiplier": 2 * (k + 1) * z, "classifier_noise_multiplier": 2 * z,
                "pma_noise_std": z * out["pma_sensitivity"]}

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """DP-SGD encoder, noisy release once, DP-SGD classifier on [X | release]; no curve written."""
        hidden, base_layers, dropout = self._sizes(model_cfg)
        privacy = self.calibrate(data)
        torch.manual_seed(seed)
        start = time.perf_counter()
        rows = AdjacencyRows.from_edges(data.edge_index, data.num_nodes)
        encoder, enc_trace, _ = self._encoder(data, rows, hidden, privacy, seed)  # its loss reads private labels
        released, signal = self._release(encoder, rows, privacy["pma_noise_std"], seed)
        classifier = self._classifier(data, hidden, base_layers, dropout)
        inputs, tr = torch.cat([data.x, released], dim=1), data.train_mask
        sigma = privacy["classifier_noise_multiplier"]
        cls_trace = DpsgdTrace(sigma, self.max_grad_norm, param_count(classifier))
        dpsgd_fit(classifier, inputs[tr], data.y[tr], epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                  weight_decay=float(train_cfg.weight_decay), noise_multiplier=sigma,
                  max_grad_norm=self.max_grad_norm, val=None, seed=seed + 3, trace=cls_trace)
        (enc_cov, enc_out), (cls_cov, cls_out) = enc_trace.summary("encoder"), cls_trace.summary("classifier")
        model = CachedDpdgc(classifier, released).eval()
        result = FitResult(epochs=self.epochs, best_epoch=self.epochs, train_seconds=time.perf_counter() - start,
                           history=[])  # the curves read private labels; see the module docstring
        return TrainedModel(model=model, graph=data, fit=result, privacy={**privacy, **enc_cov, **signal, **cls_cov},
                            diagnostics={**enc_out, **cls_out},
                            explain_view=self._view(model, encoder, rows, data, signal["classifier_input_scale"]))
