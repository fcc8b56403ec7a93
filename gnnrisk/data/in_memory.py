"""A user's own `torch_geometric.data.Data` from Python (`gnnrisk.run(..., data=graph)`), checked and pseudonymised.

`gnnrisk.run` and `gnnrisk.sweep` hold the graph for the duration of the call (`given_graph`) and select
`data=in_memory`, whose loader reads it from there; the run's config records the graph's fingerprint
(a SHA-256 of its tensors), so a run folder says which graph it was trained on. As for `data=edgelist`,
the graph is anonymised on load: only the contract's fields are kept (x, edge_index, y, the three split
masks when given, an optional `group` protected attribute), every other attribute is dropped, and nodes
are re-indexed by a random permutation (`pseudonym_key`: null = a fresh key from the operating system,
never stored). Splits, when the graph has none, are drawn from the run's seed in the given node order,
so they do not depend on the key. Edges are made undirected, without self-loops or duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from gnnrisk.data.splits import check_shares, inductive_masks, random_masks
from gnnrisk.errors import ConfigError, DataError, check_number

log = logging.getLogger(__name__)

NAME = "in_memory"
MASKS = ("train_mask", "val_mask", "test_mask")
KEPT = ("x", "edge_index", "y", *MASKS, "group")
_GIVEN: ContextVar[Data | None] = ContextVar("gnnrisk_given_graph", default=None)


def fingerprint(data: Data) -> str:
    """`sha256_` and 16 hex digits of the SHA-256 of the graph's contract tensors: names the graph in the run's config."""
    digest = hashlib.sha256()
    for key in KEPT:
        value = getattr(data, key, None)
        if isinstance(value, Tensor):
            digest.update(key.encode())
            digest.update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return "sha256_" + digest.hexdigest()[:16]  # the prefix keeps Hydra from reading it as a number


@contextmanager
def given_graph(data: object) -> Iterator[str]:
    """Hold `data` for `data=in_memory` while the block runs; yields its fingerprint."""
    if not isinstance(data, Data):
        raise ConfigError("data", type(data).__name__, "expected a torch_geometric.data.Data (node features x, "
                          "edge_index, labels y); a heterogeneous graph or another object cannot be given")
    _check_fields(data)
    token = _GIVEN.set(data)
    try:
        yield fingerprint(data)
    finally:
        _GIVEN.reset(token)


def _check_fields(data: Data) -> None:
    """The given graph's fields: x [N, F] real, y [N] class indices, edge_index [2, E] within 0..N-1, masks [N] bool."""
    x, y, edge_index = (getattr(data, k, None) for k in ("x", "y", "edge_index"))
    if not isinstance(x, Tensor) or x.dim() != 2 or x.size(0) == 0 or x.is_complex():
        raise DataError(f"the given graph's x must be a 2-D tensor of node features [N, F] (got "
                        f"{_describe(x)})")
    n = x.size(0)
    if not isinstance(y, Tensor) or y.shape != (n,) or y.is_floating_point() or y.is_complex():
        raise DataError(f"the given graph's y must be an integer tensor of class indices of shape [{n}] (got "
                        f"{_describe(y)})")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2 \
            or edge_index.is_floating_point():
        raise DataError(f"the given graph's edge_index must be an integer tensor [2, E] (got {_describe(edge_index)})")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise DataError(f"the given graph's edge_index refers to nodes outside 0..{n - 1} (x has {n} rows)")
    present = [k for k in MASKS if getattr(data, k, None) is not None]
    if present and len(present) < len(MASKS):
        raise DataError(f"the given graph has {', '.join(present)} but not "
                        f"{', '.join(k for k in MASKS if k not in present)}: give all three masks or none "
                        "(none: data.split draws them from the run's seed)")
    for key in present + (["group"] if getattr(data, "group", None) is not None else []):
        value = getattr(data, key)
        wanted = torch.bool if key in MASKS else None
        if not isinstance(value, Tensor) or value.shape != (n,) or (wanted is not None and value.dtype != wanted) \
                or (wanted is None and (value.is_floating_point() or value.is_complex())):
            kind = "a boolean" if key in MASKS else "an integer"
            raise DataError(f"the given graph's {key} must be {kind} tensor of shape [{n}] (got {_describe(value)})")
        if key == "group" and int(value.min()) < 0:
            raise DataError("the given graph's group must hold group indices 0..G-1 (found a negative value)")


def _describe(value: object) -> str:
    """A tensor's dtype and shape, or the type of anything else, for error messages."""
    if isinstance(value, Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} of shape {list(value.shape)}"
    return "nothing" if value is None else type(value).__name__


def load_in_memory(cfg: DictConfig, seed: int) -> Data:
    """The graph given to `gnnrisk.run(data=...)`, pseudonymised, with its splits; refused outside such a call."""
    given = _GIVEN.get()
    if given is None:
        raise ConfigError("data.name", NAME, "only from Python: gnnrisk.run(..., data=graph) with a "
                          "torch_geometric.data.Data; on the command line a graph of your own is read by data=edgelist")
    expected = cfg.get("fingerprint")
    if expected is not None and expected != fingerprint(given):
        raise ConfigError("data.fingerprint", expected, f"the graph given to this call has fingerprint "
                          f"{fingerprint(given)}: a run records the graph it was given; leave the field unset")
    key = cfg.get("pseudonym_key")
    if key is not None:
        key = int(check_number("data.pseudonym_key", key, low=0, high=2**63 - 1, integer=True))
    split = cfg.get("split") or {}
    check_shares(split.get("train", 0.6), split.get("val", 0.2))  # checked even when the graph brings its masks
    fraction = check_number("data.split.inductive_fraction", split.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)
    n = given.x.size(0)
    generator = torch.Generator().manual_seed(seed)  # splits in the given node order, then carried to the pseudonyms
    if getattr(given, "train_mask", None) is not None:
        masks = [getattr(given, k).clone() for k in MASKS]
    else:
        masks = list(random_masks(n, split.get("train", 0.6), split.get("val", 0.2), generator))
    masks += inductive_masks(n, generator, fraction)
    dropped = sorted(k for k in given.keys() if k not in KEPT and k != "num_nodes")
    if dropped:
        log.info("data=in_memory: dropped the fields %s (only %s are kept)", ", ".join(dropped), ", ".join(KEPT))

    perm = torch.randperm(n, generator=torch.Generator().manual_seed(secrets.randbits(63) if key is None else key))
    order = torch.argsort(perm)  # pseudonym j <- given node order[j]
    edge_index, _ = remove_self_loops(perm[given.edge_index.long().cpu()])
    edge_index = coalesce(to_undirected(edge_index, num_nodes=n), num_nodes=n)
    data = Data(x=given.x.detach().cpu().float()[order], edge_index=edge_index,
                y=given.y.detach().cpu().long()[order], num_nodes=n)
    data.train_mask, data.val_mask, data.test_mask, data.ind_train_mask, data.ind_test_mask = (
        m.cpu()[order] for m in masks)
    if getattr(given, "group", None) is not None:
        data.group = given.group.detach().cpu().long()[order]
    data.name = NAME
    return data


__all__ = ["NAME", "fingerprint", "given_graph", "load_in_memory"]
