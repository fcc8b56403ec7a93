"""Pieces of the link attacks: distances, pair sampling, batched influence, density metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import distance
from torch_geometric.nn.models import GCN

from gnnrisk.attack.linkteller import precision_recall_at_density
from gnnrisk.attack.lsa import DISTANCES, row_distances
from gnnrisk.attack.pairs import balanced_pairs, edges_among, pair_keys
from gnnrisk.attack.queries import feature_influence, own_feature_gradients


def test_row_distances_match_scipy():
    """Each of the 8 distances equals scipy.spatial.distance on every row pair."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 4, generator=g).softmax(-1)
    b = torch.rand(50, 4, generator=g).softmax(-1)
    ours = row_distances(a, b)
    assert set(ours) == set(DISTANCES) and len(DISTANCES) == 8
    for name in DISTANCES:
        ref = [getattr(distance, name)(a[i].double().numpy(), b[i].double().numpy()) for i in range(50)]
        np.testing.assert_allclose(ours[name].numpy(), ref, rtol=1e-9, atol=1e-12, err_msg=name)


def _ring(n: int) -> torch.Tensor:
    """An undirected ring with chords to the node two steps ahead."""
    src = torch.arange(n)
    und = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([src, (src + 2) % n])], dim=1)
    return torch.cat([und, und.flip(0)], dim=1)


def test_balanced_pairs_are_edges_and_non_edges():
    """Positives are edges, negatives are distinct non-edges without self pairs, same count."""
    n, ei = 200, _ring(200)
    pairs, labels = balanced_pairs(ei, n, 150, torch.Generator().manual_seed(1), "f")
    keys = pair_keys(pairs[0], pairs[1], n)
    edge_keys = pair_keys(ei[0], ei[1], n)
    assert torch.isin(keys[labels], edge_keys).all() and not torch.isin(keys[~labels], edge_keys).any()
    assert (pairs[0] != pairs[1]).all() and keys[~labels].unique().numel() == 150 and labels.sum() == 150


def test_too_many_pairs_is_a_config_error():
    """Asking for more edges than the graph has names the field."""
    from gnnrisk.errors import ConfigError
    with pytest.raises(ConfigError, match="attack.lsa.num_pairs"):
        balanced_pairs(_ring(10), 10, 100, torch.Generator().manual_seed(0), "attack.lsa.num_pairs")


def test_batched_influence_equals_one_query_at_a_time():
    """The disjoint-union batch gives the same influence matrix as separate queries."""
    torch.manual_seed(0)
    n, ei = 40, _ring(40)
    x = torch.randn(n, 5)
    model = GCN(5, 8, num_layers=2, out_channels=2).eval()
    nodes = torch.tensor([0, 3, 7, 20])
    batched = feature_influence(model, x, ei, nodes, nodes, delta=0.01, chunk=3)
    with torch.no_grad():
        base = model(x, ei).softmax(-1)
        for i, v in enumerate(nodes):
            xv = x.clone()
            xv[v] *= 1.01
            one = (model(xv, ei).softmax(-1) - base)[nodes].norm(dim=-1) / 0.01
            torch.testing.assert_close(batched[i], one, rtol=1e-4, atol=1e-5)
    # a 2-layer GCN: nodes more than 2 hops apart do not influence each other
    assert batched[0, 3] == 0 and batched[0, 1] > 0  # 0 -> 20 is far; 0 -> 3 is two hops (0-1-3)


def test_own_gradients_equal_autograd_per_node():
    """Per-node gradient of the predicted-class log-probability w.r.t. its own features, batched."""
    torch.manual_seed(1)
    n, ei = 30, _ring(30)
    x = torch.randn(n, 4)
    model = GCN(4, 8, num_layers=2, out_channels=2).eval()
    nodes = torch.tensor([2, 5, 11])
    ours = own_feature_gradients(model, x, ei, nodes, chunk=2)
    pred = model(x, ei).argmax(-1)
    for i, v in enumerate(nodes):
        xr = x.clone().requires_grad_(True)
        model(xr, ei).log_softmax(-1)[v, pred[v]].backward()
        torch.testing.assert_close(ours[i], xr.grad[v], rtol=1e-4, atol=1e-6)


def test_precision_recall_at_density_guesses():
    """With k true edges ranked first, precision is 1 up to k and recall is 1 from k on."""
    labels = np.zeros(100, dtype=bool)
    labels[:8] = True
    scores = -np.arange(100.0)
    out = precision_recall_at_density(scores, labels)
    assert out["attack_linkteller_precision_at_k"] == 1.0 and out["attack_linkteller_recall_at_k"] == 1.0
    assert out["attack_linkteller_recall_at_k_div2"] == 0.5 and out["attack_linkteller_precision_at_k_x2"] == 0.5


def test_edges_among_is_symmetric_restriction():
    """The restricted adjacency keeps exactly the ties between the chosen nodes."""
    ei = _ring(10)
    adj = edges_among(ei, torch.tensor([0, 1, 2, 5]), 10)
    assert adj[0, 1] and adj[1, 0] and adj[0, 2] and not adj[0, 3] and (adj == adj.T).all()


def test_node_uniform_pairs_follow_the_published_balanced_sample():
    """LinkTeller/LPGNet `balanced`: edges by a uniform node with a tie then a uniform neighbour, non-edges
    uniform, both with replacement, all inside the pool; a star's leaves then carry most of the edge draws."""
    from gnnrisk.attack.linkteller import node_uniform_pairs
    n = 60
    star = torch.stack([torch.zeros(20, dtype=torch.long), torch.arange(1, 21)])   # hub 0, leaves 1..20
    path = torch.stack([torch.arange(30, 59), torch.arange(31, 60)])                # 30-31-...-59
    und = torch.cat([star, path], dim=1)
    ei = torch.cat([und, und.flip(0)], dim=1)
    pool = torch.ones(n, dtype=torch.bool)
    pool[45:] = False                                                               # cuts the path at 44-45
    pairs, labels = node_uniform_pairs(ei, pool, 4000, torch.Generator().manual_seed(0))
    assert pairs.shape == (2, 8000) and labels.sum() == 4000 and not labels[4000:].any()
    keys, edge_keys = pair_keys(pairs[0], pairs[1], n), pair_keys(ei[0], ei[1], n)
    assert torch.isin(keys[labels], edge_keys).all() and not torch.isin(keys[~labels], edge_keys).any()
    assert pool[pairs].all() and (pairs[0] != pairs[1]).all()
    # sources: the 36 pool nodes with a tie in the pool (0..20, 30..44), uniformly: the hub is 1 of them
    hub_source = (pairs[0, :4000] == 0).float().mean().item()
    assert abs(hub_source - 1 / 36) < 0.015
    # with replacement: 4000 draws of 34 distinct edges repeat edges
    assert keys[labels].unique().numel() == 20 + 14
    again, _ = node_uniform_pairs(ei, pool, 4000, torch.Generator().manual_seed(0))
    assert torch.equal(pairs, again)


def test_balanced_linkteller_scores_directed_influence():
    """pairs=balanced on a GCN: 300 edges and 300 non-edges, the edges scored above the (mostly distant) non-edges."""
    from omegaconf import OmegaConf
    from gnnrisk.attack.context import AttackContext
    from gnnrisk.attack.linkteller import run
    from gnnrisk.privacy import TrainedModel
    from torch_geometric.data import Data
    torch.manual_seed(0)
    n = 200
    ei = _ring(n)
    data = Data(x=torch.randn(n, 5), edge_index=ei, num_nodes=n)
    data.ind_train_mask = torch.arange(n) < 100
    data.ind_test_mask = ~data.ind_train_mask
    model = GCN(5, 8, num_layers=2, out_channels=2).eval()
    trained = TrainedModel(model=model, graph=data, fit=None, privacy={})
    cfg = OmegaConf.create({"linkteller": {"setting": "transductive", "pairs": "balanced", "num_pairs": 300,
                                           "num_nodes": 50, "delta": 0.01, "chunk": 16}})
    out = run(AttackContext(data=data, trained=trained, cfg=cfg, seed=0))
    assert out["attack_linkteller_pair_sampling"] == "balanced" and out["attack_linkteller_pairs"] == 600
    assert out["attack_linkteller_true_edges"] == 300 and out["attack_linkteller_auroc"] > 0.95
    with pytest.raises(Exception, match="attack.linkteller.pairs"):
        run(AttackContext(data=data, trained=trained, seed=0,
                          cfg=OmegaConf.create({"linkteller": {**cfg.linkteller, "pairs": "some"}})))
