"""Planetoid citation benchmarks (Cora, CiteSeer, PubMed) from local raw files, never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.io import read_txt_array
from torch_geometric.io.planetoid import edge_index_from_dict
from torch_geometric.transforms import NormalizeFeatures
from torch_geometric.utils import degree, index_to_mask, remove_self_loops, to_undirected

from gnnrisk.data.safe_pickle import load_restricted
from gnnrisk.data.splits import check_shares, inductive_masks, random_masks
from gnnrisk.errors import ConfigError, DataError, check_choice, check_number

DATASETS = ("Cora", "CiteSeer", "PubMed")
RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
NUM_VAL = 500  # the public split: validation nodes follow the training nodes


def raw_file_names(dataset: str) -> list[str]:
    """The 8 files read from `<root>/<dataset>/raw/`."""
    return [f"ind.{dataset.lower()}.{suffix}" for suffix in RAW_SUFFIXES]


SPLITS = ("public", "random")


def load_planetoid(cfg: DictConfig, seed: int) -> Data:
    """Load a Planetoid dataset with its public (or a seeded random) split, plus a seeded inductive partition."""
    dataset = check_choice("data.dataset", cfg.get("dataset", "CiteSeer"), DATASETS)
    root = cfg.get("root")
    if not isinstance(root, str) or not root:
        raise ConfigError("data.root", root, "expected the folder that contains "
                          f"{dataset}/raw/ with the Planetoid files")
    normalize = cfg.get("normalize_features", False)
    if not isinstance(normalize, bool):
        raise ConfigError("data.normalize_features", normalize, "expected true or false")
    drop_isolated = cfg.get("remove_isolated", False)
    if not isinstance(drop_isolated, bool):
        raise ConfigError("data.remove_isolated", drop_isolated, "expected true or false")
    if cfg.get("cache_dir") is not None:
        raise ConfigError("data.cache_dir", cfg.get("cache_dir"), "no longer used: the raw files are "
                          "read in memory and nothing is cached; remove the setting")
    split_cfg = cfg.get("split") or {}
    fraction = check_number("data.split.inductive_fraction", split_cfg.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)
    kind = check_choice("data.split.kind", split_cfg.get("kind", "public"), SPLITS)
    if kind == "random":  # checked before the files are read
        check_shares(split_cfg.get("train", 0.5), split_cfg.get("val", 0.25))

    raw_dir = Path(root).expanduser() / dataset / "raw"
    names = raw_file_names(dataset)
    missing = [n for n in names if not (raw_dir / n).is_file()]
    if missing:
        raise DataError(
            f"Planetoid {dataset}: folder {raw_dir} must hold the files {', '.join(names)} "
            f"(missing: {', '.join(missing)}); nothing can be downloaded, so copy them there "
            f"or set data.root to the folder that contains {dataset}/raw/")

    data = read_planetoid_raw(raw_dir, dataset)
    if normalize:
        data = NormalizeFeatures()(data)

    # PyG's edge_index is symmetric but not sorted; the contract wants it coalesced, loop-free.
    edge_index, _ = remove_self_loops(data.edge_index)
    out = Data(x=data.x.float(), edge_index=to_undirected(edge_index, num_nodes=data.num_nodes),
               y=data.y.long(), train_mask=data.train_mask.bool(), val_mask=data.val_mask.bool(),
               test_mask=data.test_mask.bool())
    if drop_isolated:  # GAP's and DPDGC's loaders (RemoveIsolatedNodes); the public split's masks follow
        out = out.subgraph(degree(out.edge_index[0], out.num_nodes) > 0)
    generator = torch.Generator().manual_seed(seed)
    out.ind_train_mask, out.ind_test_mask = inductive_masks(out.num_nodes, generator, fraction)
    if kind == "random":  # shares of all nodes, as GAP, ProGAP and DPDGC evaluate
        out.train_mask, out.val_mask, out.test_mask = random_masks(
            out.num_nodes, split_cfg.get("train", 0.5), split_cfg.get("val", 0.25), generator)
    out.name = dataset
    return out


def read_planetoid_raw(raw_dir: Path, dataset: str) -> Data:
    """The graph PyG's `read_planetoid_data` builds, unpickling the raw files with an allow-list."""
    path = {suffix: raw_dir / name for suffix, name in zip(RAW_SUFFIXES, raw_file_names(dataset))}
    x, tx, allx, y, ty, ally = (_read_matrix(path[s]) for s in ("x", "tx", "allx", "y", "ty", "ally"))
    graph = load_restricted(path["graph"])
    if not isinstance(graph, dict):
        raise DataError(f"{path['graph']}: expected a dict of adjacency lists, got {type(graph).__name__}")
    try:
        test_index = read_txt_array(str(path["test.index"]), dtype=torch.long)
        sorted_test_index = test_index.sort()[0]
        if dataset == "CiteSeer":
            # CiteSeer has isolated test nodes, so its test indices have gaps: those nodes get
            # zero rows in tx and ty (as PyG does).
            offset = sorted_test_index - test_index.min()
            span = int(test_index.max() - test_index.min()) + 1
            tx = tx.new_zeros(span, tx.size(1)).index_copy_(0, offset, tx)
            ty = ty.new_zeros(span, ty.size(1)).index_copy_(0, offset, ty)
        x = torch.cat([allx, tx], dim=0)
        x[test_index] = x[sorted_test_index]
        labels = torch.cat([ally, ty], dim=0).max(dim=1)[1]
        labels[test_index] = labels[sorted_test_index]
        num_nodes, num_train = labels.size(0), y.size(0)
        return Data(
            x=x, edge_index=edge_index_from_dict(graph, num_nodes=num_nodes), y=labels,
            train_mask=index_to_mask(torch.arange(num_train), size=num_nodes),
            val_mask=index_to_mask(torch.arange(num_train, num_train + NUM_VAL), size=num_nodes),
            test_mask=index_to_mask(test_index, size=num_nodes))
    except Exception as err:  # noqa: BLE001 - the files are readable but do not fit together
        raise DataError(f"Planetoid {dataset}: cannot read the files under {raw_dir} as one graph "
                        f"({type(err).__name__}: {err}); check the raw files") from err


def _read_matrix(path: Path) -> Tensor:
    """A float feature or one-hot label matrix from a raw file (numpy array or CSR matrix)."""
    out = load_restricted(path)
    if isinstance(out, scipy.sparse.csr_matrix):
        out = out.toarray()
    if not isinstance(out, np.ndarray) or out.ndim != 2 or out.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected a 2-D numeric numpy array or scipy.sparse CSR matrix, "
                        f"got {type(out).__name__} {getattr(out, 'dtype', '')}".rstrip())
    return torch.from_numpy(out).to(torch.float)
