"""The per-node edge masks, saved as one compressed NumPy archive in the run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gnnrisk.explain.compute import NodeExplanation


def save_explanations(path: Path, explained: list[NodeExplanation], edge_index: Tensor) -> None:
    """Write node ids, CSR offsets into the edge arrays, global edge ids, endpoints, mask values, top-k, ground truth.

    Node i's edges are `edge_ids[offsets[i]:offsets[i+1]]` (ids into the graph the model read).
    """
    counts = torch.tensor([e.edge_ids.numel() for e in explained])
    edge_ids = torch.cat([e.edge_ids for e in explained]).cpu()
    arrays = {
        "node_ids": np.array([e.node for e in explained], dtype=np.int64),
        "offsets": np.concatenate([[0], np.cumsum(counts.numpy())]).astype(np.int64),
        "edge_ids": edge_ids.numpy(),
        "edge_src": edge_index[0].cpu()[edge_ids].numpy(),
        "edge_dst": edge_index[1].cpu()[edge_ids].numpy(),
        "edge_mask": torch.cat([e.mask for e in explained]).float().cpu().numpy(),
        "in_top_k": torch.cat([e.top for e in explained]).cpu().numpy(),
        "seconds": np.array([e.seconds for e in explained]),
    }
    if explained[0].truth is not None:  # per node: edges that explain that node's outcome
        arrays["truth"] = torch.cat([e.truth for e in explained]).cpu().numpy()
    np.savez_compressed(path, **arrays)
