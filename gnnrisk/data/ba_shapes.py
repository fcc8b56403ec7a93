"""BA-Shapes (GNNExplainer): house motifs on a Barabási–Albert graph, with ground-truth motif edges."""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.datasets import ExplainerDataset
from torch_geometric.datasets.graph_generator import BAGraph
from torch_geometric.datasets.motif_generator import HouseMotif
from torch_geometric.utils import coalesce

from gnnrisk.data.splits import inductive_masks, random_masks
from gnnrisk.errors import ConfigError, check_number


def load_ba_shapes(cfg: DictConfig, seed: int) -> Data:
    """Generate BA-Shapes for `seed`: 300 BA nodes (m=5), 80 houses, 1% noise edges, constant features.

    Labels follow PyG's HouseMotif (and the original code): 0 = base node, 1 = the two upper
    corners of the house (joined to the roof), 2 = the two bottom corners, 3 = the roof apex.
    """
    base_nodes = check_number("data.base_nodes", cfg.get("base_nodes", 300), low=2, integer=True)
    base_m = check_number("data.base_m", cfg.get("base_m", 5), low=1, integer=True)
    if base_m >= base_nodes:
        raise ConfigError("data.base_m", base_m, f"expected an integer in [1, {base_nodes - 1}] "
                          "(fewer than data.base_nodes)")
    num_motifs = check_number("data.num_motifs", cfg.get("num_motifs", 80), low=1, high=base_nodes,
                              integer=True)  # each house hangs on a distinct base node
    noise = check_number("data.noise_edge_fraction", cfg.get("noise_edge_fraction", 0.01),
                         low=0.0, high=1.0)
    feature_dim = check_number("data.feature_dim", cfg.get("feature_dim", 10), low=1, integer=True)
    split = cfg.get("split") or {}
    fraction = check_number("data.split.inductive_fraction", split.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)

    graph = _generate(base_nodes, base_m, num_motifs, seed)
    num_nodes = int(graph.num_nodes)
    generator = torch.Generator().manual_seed(seed)
    edge_index = graph.edge_index
    causal = graph.edge_mask > 0
    num_noise = int(edge_index.size(1) // 2 * noise)  # floor, as the original `perturb`
    room = num_nodes * (num_nodes - 1) // 2 - edge_index.size(1) // 2
    if num_noise > room:
        raise ConfigError("data.noise_edge_fraction", noise, f"{num_noise} noise edges do not fit: "
                          f"the graph has room for only {room} more edges")
    if num_noise:
        extra = _noise_edges(edge_index, num_nodes, num_noise, generator)
        edge_index = torch.cat([edge_index, extra, extra.flip(0)], dim=1)
        causal = torch.cat([causal, torch.zeros(2 * num_noise, dtype=torch.bool)])
    edge_index, causal = coalesce(edge_index, causal.long(), num_nodes, reduce="max")

    data = Data(x=torch.ones(num_nodes, feature_dim), edge_index=edge_index, y=graph.y.long(),
                causal_edge_mask=causal.bool())
    data.train_mask, data.val_mask, data.test_mask = random_masks(
        num_nodes, split.get("train", 0.8), split.get("val", 0.1), generator)
    data.ind_train_mask, data.ind_test_mask = inductive_masks(num_nodes, generator, fraction)
    data.name = "ba_shapes"
    return data


def _generate(base_nodes: int, base_m: int, num_motifs: int, seed: int) -> Data:
    """Run PyG's generator under `seed` without disturbing the global torch/numpy RNG state."""
    # BAGraph draws from np.random and ExplainerDataset from torch's global RNG: seed both.
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            return ExplainerDataset(BAGraph(base_nodes, base_m), HouseMotif(), num_motifs)[0]
        finally:
            np.random.set_state(np_state)


def _noise_edges(edge_index: torch.Tensor, num_nodes: int, count: int,
                 generator: torch.Generator) -> torch.Tensor:
    """Draw `count` distinct random node pairs (u < v) that are neither loops nor existing edges."""
    taken = edge_index[0] * num_nodes + edge_index[1]
    chosen = torch.empty(0, dtype=torch.long)
    while chosen.numel() < count:  # a round or two: the graph is sparse
        pairs = torch.randint(num_nodes, (2, 2 * count), generator=generator)
        u, v = pairs.min(0).values, pairs.max(0).values
        keys = u * num_nodes + v
        keys = keys[(u != v) & ~torch.isin(keys, taken) & ~torch.isin(keys, chosen)]
        # First occurrence of each key, kept in draw order (unique() alone would sort them).
        uniq, inverse = torch.unique(keys, return_inverse=True)
        first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long)
        first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
        chosen = torch.cat([chosen, keys[first.sort().values]])[:count]
    return torch.stack([chosen // num_nodes, chosen % num_nodes])
