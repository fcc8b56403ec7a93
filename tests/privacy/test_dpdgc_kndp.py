"""dpdgc_kndp (DPDGC, k-neighbour level): sensitivities on a small graph, accounting against dp-accounting, its
relation to dpdgc_edp, the spent epsilon, determinism and bad input. Tiny graphs: seconds."""

from __future__ import annotations

import math
from pathlib import Path

import dp_accounting as dpa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from dp_accounting.rdp import RdpAccountant
from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon
from omegaconf import OmegaConf
from scipy.special import comb, logsumexp
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

from gnnrisk.errors import ConfigError
from gnnrisk.privacy import build_mechanism, mechanism_class
from gnnrisk.privacy.dpdgc import ORDERS, edp_curve, epsilon_of
from gnnrisk.privacy.dpdgc_kndp import DpdgcKndp, kndp_curve, release_sensitivity
from gnnrisk.privacy.dpdgc_model import (
    AdjacencyEncoder,
    AdjacencyRows,
    clipped_gradient_sum,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "privacy"
MODEL = OmegaConf.create({"name": "gcn", "hidden_channels": 8, "num_layers": 2, "dropout": 0.0})
TRAIN = OmegaConf.create({"epochs": 5, "lr": 0.01, "weight_decay": 0.0, "patience": 5, "monitor": "val_loss",
                          "batch_size": None, "num_neighbors": [10, 10]})


def cfg(name: str = "dpdgc_kndp", **overrides):
    """The shipped `configs/privacy/<name>.yaml` with overrides."""
    return OmegaConf.merge(OmegaConf.load(CONFIGS / f"{name}.yaml"), overrides)


def small_graph(seed: int = 0, n: int = 60, p: float = 0.12, directed: bool = False) -> Data:
    """A random graph with two communities as labels and a 50/25/25 split."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) >= n // 2).long()
    prob = torch.where(y[:, None] == y[None, :], p, p / 4)
    adj = (torch.rand(n, n, generator=g) < prob).triu(1)
    edge_index = adj.nonzero().t()
    edge_index = edge_index if directed else coalesce(to_undirected(edge_index), num_nodes=n)
    x = torch.randn(n, 4, generator=g)
    x[:, 0] += y
    perm = torch.randperm(n, generator=g)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    for mask, part in zip(masks, (perm[: n // 2], perm[n // 2: 3 * n // 4], perm[3 * n // 4:])):
        mask[part] = True
    return Data(x=x, edge_index=edge_index, y=y, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2],
                num_nodes=n)


def encoder_with_columns(n: int, s: float, aligned: bool, seed: int = 0) -> AdjacencyEncoder:
    """Every column of W of norm exactly s; `aligned`: all the same column (the worst case for one row)."""
    torch.manual_seed(seed)
    enc = AdjacencyEncoder(n, 8, 2)
    with torch.no_grad():
        cols = torch.randn(1, 8).expand(n, 8) if aligned else torch.randn(n, 8)
        enc.weight.copy_(F.normalize(cols, dim=1) * s)
    return enc


def k_neighbour_change(edge_index: torch.Tensor, n: int, w: int, k: int, undirected: bool) -> torch.Tensor:
    """`edge_index` with k edges incident to w changed: its first neighbours removed, then non-neighbours added."""
    src, dst = edge_index
    neighbours = sorted(set(dst[src == w].tolist()) | set(src[dst == w].tolist()))
    others = [j for j in range(n) if j != w and j not in neighbours]
    drop, add = neighbours[: k // 2 + k % 2], others[: k // 2]
    keep = torch.ones(edge_index.size(1), dtype=torch.bool)
    for j in drop:
        keep &= ~(((src == w) & (dst == j)) | ((src == j) & (dst == w)))
    new = torch.tensor([[j, w] for j in add], dtype=torch.long).t().reshape(2, -1)
    changed = torch.cat([edge_index[:, keep], new], dim=1)
    return coalesce(to_undirected(changed), num_nodes=n) if undirected else changed


# --- sensitivities ------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("aligned", [False, True])
def test_k_changed_edges_move_the_release_by_at_most_sqrt_k_k_plus_1_s(k, aligned):
    data, s = small_graph(1), 0.7
    n = data.num_nodes
    enc = encoder_with_columns(n, s, aligned)
    full = enc.release(AdjacencyRows.from_edges(data.edge_index, n))
    degree = torch.bincount(data.edge_index[0], minlength=n)
    bound = release_sensitivity(k, undirected=True) * s
    assert bound == pytest.approx(math.sqrt(k * k + k) * s)
    for w in degree.argsort(descending=True)[:6].tolist():
        changed = k_neighbour_change(data.edge_index, n, w, k, undirected=True)
        assert (changed.size(1) - data.edge_index.size(1)) % 2 == 0
        diff = full - enc.release(AdjacencyRows.from_edges(changed, n))
        assert diff.norm() <= bound * (1 + 1e-5)
        if aligned and k == 1:  # one removed edge with equal columns: exactly the bound (dpdgc_edp's sqrt(2) s)
            assert diff.norm() == pytest.approx(bound, rel=1e-5)
    # the bound is attained: k edges removed from a node whose k neighbours have equal columns
    if aligned:
        w = int(degree.argmax())
        src, dst = data.edge_index
        neighbours = dst[src == w][:k].tolist()
        drop = torch.zeros(src.numel(), dtype=torch.bool)
        for j in neighbours:
            drop |= ((src == w) & (dst == j)) | ((src == j) & (dst == w))
        diff = full - enc.release(AdjacencyRows.from_edges(data.edge_index[:, ~drop], n))
        assert diff.norm() == pytest.approx(bound, rel=1e-5)


def test_directed_release_moves_by_at_most_k_s():
    data, s, k = small_graph(2, directed=True), 0.5, 3
    n = data.num_nodes
    enc = encoder_with_columns(n, s, aligned=True)
    full = enc.release(AdjacencyRows.from_edges(data.edge_index, n))
    assert release_sensitivity(k, undirected=False) == k
    src, dst = data.edge_index
    for w in range(n):
        incident = ((src == w) | (dst == w)).nonzero().flatten()[:k]
        drop = torch.zeros(src.numel(), dtype=torch.bool)
        drop[incident] = True
        diff = full - enc.release(AdjacencyRows.from_edges(data.edge_index[:, ~drop], n))
        assert diff.norm() <= k * s * (1 + 1e-5)


def test_one_node_label_and_k_edges_move_the_encoder_sum_by_at_most_2_k_plus_1_c():
    data, k = small_graph(3), 3
    n = data.num_nodes
    enc = encoder_with_columns(n, 0.7, aligned=False)
    nodes = torch.arange(n)  # every row a training example: the worst case
    degree = torch.bincount(data.edge_index[0], minlength=n)
    for c in (0.05, 1.0):
        before = clipped_gradient_sum(enc, AdjacencyRows.from_edges(data.edge_index, n), nodes, data.y, c)
        for w in degree.argsort(descending=True)[:5].tolist():
            changed = k_neighbour_change(data.edge_index, n, w, k, undirected=True)
            y = data.y.clone()
            y[w] = 1 - y[w]  # the node's label is private too
            after = clipped_gradient_sum(enc, AdjacencyRows.from_edges(changed, n), nodes, y, c)
            moved = math.sqrt(float((before[0] - after[0]).pow(2).sum() + (before[1] - after[1]).pow(2).sum()))
            assert 0 < moved <= 2 * (k + 1) * c + 1e-6


# --- accounting, against Google's dp-accounting --------------------------------------------------------

def google_rdp(event: dpa.DpEvent, count: int, orders) -> np.ndarray:
    """dp-accounting's RDP curve of `count` compositions of `event` at `orders`."""
    accountant = RdpAccountant(list(map(float, orders)))
    accountant.compose(event, count)
    return np.asarray(accountant._rdp)


def independent_changed_rdp(sigma: float, q: float, changed: int, steps: int) -> np.ndarray:
    """`changed` examples with other contents, recomputed apart: coupling by explicit sums; deletion of the group
    from dp-accounting's Poisson-subsampled Gaussian at orders 2a and 2a - 1 joined by the weak triangle inequality."""
    a = np.asarray(ORDERS, dtype=float)
    coupling = np.array([max(0.0, steps * logsumexp([
        math.log(comb(changed, r)) + r * math.log(q) + (changed - r) * math.log1p(-q)
        + alpha * (alpha - 1) * (2 * r) ** 2 / (2 * sigma ** 2) for r in range(changed + 1)]) / (alpha - 1))
        for alpha in a])
    event = dpa.PoissonSampledDpEvent(1 - (1 - q) ** changed, dpa.GaussianDpEvent(sigma / changed))
    w = (a - 0.5) / (a - 1)
    triangle = w * google_rdp(event, steps, 2 * a) + google_rdp(event, steps, 2 * a - 1)
    return np.minimum(coupling, triangle)


def independent_kndp(z: float, q: float, enc: int, cls: int, k: int, delta: float) -> float:
    """dpdgc_kndp's epsilon recomputed apart: encoder (k + 1 changed rows, 2 (k+1) z) + Gaussian release (z) +
    classifier (one changed example, 2 z)."""
    curve = (independent_changed_rdp(2 * (k + 1) * z, q, k + 1, enc) + google_rdp(dpa.GaussianDpEvent(z), 1, ORDERS)
             + independent_changed_rdp(2 * z, q, 1, cls))
    return compute_epsilon(list(ORDERS), list(curve), delta)[0]


@pytest.mark.parametrize("z,q,enc,cls,k,delta", [(3.0, 0.0256, 3900, 3900, 1, 2e-5), (2.0, 0.2, 200, 300, 8, 1e-5),
                                                 (6.0, 0.05, 800, 400, 3, 1e-4)])
def test_kndp_accounting_matches_dp_accounting(z, q, enc, cls, k, delta):
    ours = epsilon_of(kndp_curve(z, q, enc, cls, k), delta)
    assert ours == pytest.approx(independent_kndp(z, q, enc, cls, k, delta), rel=0.01)


# --- k = 1 against dpdgc_edp, and k ----------------------------------------------------------------------

@pytest.mark.parametrize("z,q,steps", [(3.0, 0.0256, 3900), (12.0, 0.2, 500)])
def test_k1_is_edp_plus_the_classifier_never_cheaper(z, q, steps):
    # without classifier steps k = 1 is exactly dpdgc_edp on an undirected graph (two changed rows, sqrt(2) s)
    assert np.allclose(kndp_curve(z, q, steps, 0, 1), edp_curve(z, q, steps, 2))
    assert np.all(kndp_curve(z, q, steps, steps, 1) >= edp_curve(z, q, steps, 2))
    assert np.all(kndp_curve(z, q, steps, steps, 1) >= edp_curve(z, q, steps, 1))  # directed edp: one row
    assert epsilon_of(kndp_curve(z, q, steps, steps, 1), 1e-5) > epsilon_of(edp_curve(z, q, steps, 2), 1e-5)
    # (z is the noise over each part's sensitivity, which grows with k: k is compared at a target, below)


@pytest.mark.slow  # four noise calibrations by bisection over the accountant: about 14 s
def test_calibrated_k1_noise_is_at_least_edp_and_epsilon_is_spent_within_target():
    data = small_graph(4, n=80)
    undirected_edges = data.edge_index.size(1) // 2
    for eps in (1.0, 16.0):  # the ends of the range
        kndp = build_mechanism(cfg(epsilon=eps, k=1, encoder_epochs=5, epochs=5, batch_size=8)).calibrate(data)
        edp = build_mechanism(cfg("dpdgc_edp", epsilon=eps, encoder_epochs=5, batch_size=8)).calibrate(data)
        assert 0.99 * eps < kndp["epsilon"] <= eps
        assert kndp["delta"] == pytest.approx(edp["delta"]) == pytest.approx(1 / (10 * undirected_edges))
        assert kndp["pma_sensitivity"] == pytest.approx(edp["pma_sensitivity"]) == pytest.approx(math.sqrt(2))
        assert kndp["noise_multiplier"] >= edp["noise_multiplier"]
        assert kndp["pma_noise_std"] >= edp["pma_noise_std"]
        assert kndp["encoder_noise_multiplier"] >= edp["encoder_noise_multiplier"]
        google = independent_kndp(kndp["noise_multiplier"], kndp["sample_rate"], kndp["encoder_steps"],
                                  kndp["classifier_steps"], 1, kndp["delta"])
        assert kndp["epsilon"] == pytest.approx(google, rel=0.01)
    # larger k: more noise on every part at the same target
    p1, p4 = (build_mechanism(cfg(epsilon=4.0, k=k, encoder_epochs=5, epochs=5, batch_size=8)).calibrate(data)
              for k in (1, 4))
    assert p4["pma_sensitivity"] == pytest.approx(math.sqrt(20)) and p4["rows_per_change"] == 5
    for key in ("pma_noise_std", "encoder_noise_multiplier"):  # (one z: the classifier's share may fall)
        assert p4[key] > p1[key]
    assert p4["privacy_unit"] == "edge" and "k=4" in p4["privacy_unit_detail"]
    assert "features and label" in p4["privacy_unit_detail"]


# --- the mechanism: contract, determinism, bad input --------------------------------------------------

@pytest.mark.slow  # three calibrated trainings: about 7 s
def test_registered_edge_level_and_deterministic_for_a_seed():
    assert mechanism_class("dpdgc_kndp") is DpdgcKndp and DpdgcKndp.privacy_unit == "edge"
    data = small_graph(5)
    mech_cfg = cfg(epsilon=4.0, k=2, encoder_epochs=2, epochs=2, batch_size=16)
    runs = [build_mechanism(mech_cfg).train(data, MODEL, TRAIN, seed) for seed in (7, 7, 8)]
    probs = [r.predict_proba() for r in runs]
    assert torch.equal(probs[0], probs[1]) and not torch.equal(probs[0], probs[2])
    p = runs[0].privacy
    assert p["mechanism"] == "dpdgc_kndp" and p["k"] == 2 and p["epsilon"] <= 4.0 and p["pma_noise_std"] > 0
    assert p["classifier_noise_multiplier"] == pytest.approx(2 * p["noise_multiplier"])
    assert p["encoder_noise_multiplier"] == pytest.approx(6 * p["noise_multiplier"])
    assert runs[0].fit.history == []  # the curves read private labels: not written at edge level
    free = build_mechanism(cfg(epsilon=float("inf"), encoder_epochs=1, epochs=1, batch_size=16)).train(
        data, MODEL, TRAIN, 0)
    assert free.privacy["epsilon"] is None and free.privacy["noise_multiplier"] == 0.0


@pytest.mark.parametrize("field,value", [
    ("k", 0), ("k", -1), ("k", 1.5), ("k", "two"), ("k", None), ("k", True), ("epsilon", 0), ("epsilon", "one"),
    ("delta", 1.0), ("epochs", 0), ("lr", 0.0), ("encoder_epochs", 0), ("batch_size", 0), ("max_grad_norm", 0.0),
    ("norm_scale", -1.0), ("batch_norm", True), ("classifier_input_noise", 0.0), ("head_layers", 0),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"privacy.{field}") as err:
        build_mechanism(cfg(**{field: value}))
    assert "\n" not in str(err.value)


def test_k_above_the_possible_incident_edges_and_unreachable_epsilon_are_refused_before_training():
    data = small_graph(6, n=20)
    with pytest.raises(ConfigError, match=r"privacy.k.*\[1, 19\]"):
        build_mechanism(cfg(k=20)).check_data(data)
    build_mechanism(cfg(k=19)).check_data(data)
    with pytest.raises(ConfigError, match="privacy.epsilon.*unreachable"):
        build_mechanism(cfg(epsilon=1e-3, batch_size=8)).calibrate(small_graph(6))
