"""Which nodes get explained: a seeded sample of predicted-positive (or correct) nodes, a count, or a list."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_choice, check_number

SPLITS = ("test", "val", "train", "all")


def candidate_mask(cfg: DictConfig, graph: Data, pred: Tensor, num_classes: int) -> Tensor:
    """Nodes eligible for the sample: in the split, predicted in `classes` (binary: positive), correct if multiclass."""
    split = check_choice("explain.split", cfg.get("split", "test"), SPLITS)
    mask = torch.ones_like(pred, dtype=torch.bool) if split == "all" else getattr(graph, f"{split}_mask").clone()
    classes = cfg.get("classes")
    if classes is None:
        classes = [1] if num_classes == 2 else list(range(num_classes))
    for i, c in enumerate(classes):
        check_number(f"explain.classes[{i}]", c, low=0, high=num_classes - 1, integer=True)
    mask &= torch.isin(pred, torch.tensor(list(classes), device=pred.device))
    if num_classes > 2:
        mask &= pred == graph.y
    return mask & has_edges(graph)


def has_edges(graph: Data) -> Tensor:
    """Nodes that receive at least one message: a node without ties has no link to explain."""
    return torch.bincount(graph.edge_index[1], minlength=graph.num_nodes) > 0


def validate_node_spec(cfg: DictConfig, num_nodes: int, num_classes: int) -> None:
    """Check `explain.split`, `explain.classes` and `explain.nodes` against the dataset, before any training."""
    check_choice("explain.split", cfg.get("split", "test"), SPLITS)
    classes = cfg.get("classes")
    if classes is not None:
        if not isinstance(classes, (list, tuple, ListConfig)) or len(classes) == 0:
            raise ConfigError("explain.classes", classes, f"expected null or a list of classes in [0, {num_classes - 1}]")
        for i, c in enumerate(classes):
            check_number(f"explain.classes[{i}]", c, low=0, high=num_classes - 1, integer=True)
    spec = cfg.get("nodes", "sample")
    if isinstance(spec, (list, tuple, ListConfig)):
        ids = [check_number(f"explain.nodes[{i}]", v, low=0, high=num_nodes - 1, integer=True)
               for i, v in enumerate(spec)]
        if not ids or len(set(ids)) != len(ids):
            raise ConfigError("explain.nodes", list(spec), f"expected distinct node ids in [0, {num_nodes - 1}]")
    elif spec == "sample":
        check_number("explain.num_nodes", cfg.num_nodes, low=1, integer=True)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        check_number("explain.nodes", spec, low=1, integer=True)
    else:
        raise ConfigError("explain.nodes", spec, "expected 'sample', a count, or a list of node ids")


def select_nodes(cfg: DictConfig, graph: Data, prob: Tensor, seed: int) -> Tensor:
    """Global ids of the nodes to explain, sorted; a ConfigError names the ways out when there are none."""
    pred = prob.argmax(-1)
    spec = cfg.get("nodes", "sample")
    n = graph.num_nodes
    if isinstance(spec, (list, tuple, ListConfig)):
        ids = [check_number(f"explain.nodes[{i}]", v, low=0, high=n - 1, integer=True) for i, v in enumerate(spec)]
        if not ids or len(set(ids)) != len(ids):
            raise ConfigError("explain.nodes", list(spec), f"expected distinct node ids in [0, {n - 1}]")
        lonely = [v for v in ids if not bool(has_edges(graph)[v])]
        if lonely:
            raise ConfigError("explain.nodes", list(spec), f"nodes {lonely} have no edge in the graph the model "
                              "reads, so there is no link to explain; drop them or use nodes=sample")
        return torch.tensor(sorted(ids), device=pred.device)
    if spec == "sample":
        count = check_number("explain.num_nodes", cfg.num_nodes, low=1, integer=True)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        count = check_number("explain.nodes", spec, low=1, integer=True)
    else:
        raise ConfigError("explain.nodes", spec, "expected 'sample', a count, or a list of node ids")
    pool = candidate_mask(cfg, graph, pred, prob.size(1)).nonzero().flatten()
    if pool.numel() == 0:
        raise ConfigError("explain.nodes", spec, f"no node to explain: no {cfg.get('split', 'test')} node "
                          "with a tie is predicted in explain.classes (binary: positive; multiclass: correctly); try "
                          "explain.split=all, other explain.classes, or an explicit list of node ids")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(pool.numel(), generator=generator).to(pool.device)
    return pool[order[:count]].sort().values

