"""Facebook100 school networks (Traud, Mucha & Porter 2012) from local `.mat` files, never downloaded.

Source: A. L. Traud, P. J. Mucha, M. A. Porter, "Social structure of Facebook networks", Physica A 391(16),
2012: one MATLAB v5 file per school (`<School><id>.mat`) with the friendship adjacency `A` (n x n, sparse,
symmetric) and `local_info` (n x 7 integers: student/faculty status, gender, major, second major/minor,
dorm/house, year, high school; 0 = missing). The DP-GNN papers (GAP, Sajadmanesh et al. USENIX Security
2023; ProGAP; DPDGC) report on it, GAP's `facebook` being UIllinois20 with target `year`.

The preprocessing is GAP's (its Facebook100 dataset and transforms), reimplemented here:

1. the high-school column is dropped; the target is one of the other six (GAP: year);
2. y = the target's sorted non-zero values as classes 0..K-1; nodes whose target is 0 (missing) are removed;
3. x = one-hot of the five other columns, categories as they occur in the file, 0 = missing: a missing value
   is all-zero in its column's block (pandas' `get_dummies` on the file, as GAP does). One difference: GAP's
   `get_dummies` leaves a column without any missing value as its raw integer code (pandas encodes only
   non-numeric columns, and only a 0 replaced by NA makes one so); here every column is one-hot (Amherst41's
   and Caltech36's status columns, complete, differ; on Haverford76 the features are GAP's exactly);
4. edges = the non-zeros of `A`, made undirected, self-loops removed; then isolated nodes removed;
5. classes with fewer than `min_class_count` nodes are removed with their nodes, labels re-indexed 0..C-1
   (GAP: 1000 on UIllinois20); as in GAP, this last step may leave a few nodes without ties;
6. seeded random train/val/test masks (GAP: 75/10/15) and an inductive partition.

Files are read with `scipy.io.loadmat` (no pickle): a MATLAB file holds data, not code.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import scipy.sparse
import torch
from omegaconf import DictConfig
from scipy.io.matlab import matfile_version
from torch_geometric.data import Data
from torch_geometric.utils import degree, to_undirected

from gnnrisk.data.splits import attach_random_splits, check_shares
from gnnrisk.errors import ConfigError, DataError, check_choice, check_number

log = logging.getLogger(__name__)

COLUMNS = ("status", "gender", "major", "minor", "housing", "year")  # local_info[:, :6]; column 7, high school, unused
NUM_INFO_COLUMNS = 7
SCHOOL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 _-]*[A-Za-z0-9])?")  # e.g. Amherst41, Johns Hopkins55


def load_facebook100(cfg: DictConfig, seed: int) -> Data:
    """Load one Facebook100 school with GAP's preprocessing, a seeded random split and an inductive partition."""
    school = _school(cfg.get("school"))
    root = cfg.get("root")
    if not isinstance(root, str) or not root.strip():
        raise ConfigError("data.root", root, "expected the folder that holds the Facebook100 .mat files")
    target = check_choice("data.target", cfg.get("target", "year"), COLUMNS)
    group = cfg.get("group")
    if group is not None:
        check_choice("data.group", group, tuple(c for c in COLUMNS if c != target))
    min_count = int(check_number("data.min_class_count", cfg.get("min_class_count", 100), low=1, integer=True))
    split_cfg = cfg.get("split") or {}
    train, val = split_cfg.get("train", 0.75), split_cfg.get("val", 0.1)
    check_shares(train, val)
    fraction = check_number("data.split.inductive_fraction", split_cfg.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)

    path = _school_file(Path(root).expanduser(), school)
    adjacency, info = read_facebook100(path)
    data = preprocess(adjacency, info, target, min_count, path, group)

    attach_random_splits(data, train, val, fraction, torch.Generator().manual_seed(seed))
    data.name = school
    return data


def _school(value: Any) -> str:
    """`data.school`: a plain file stem (no folder, no suffix)."""
    if not isinstance(value, str) or not SCHOOL_NAME.fullmatch(value):
        raise ConfigError("data.school", value, "expected a school's file stem such as Amherst41 or Caltech36 "
                          "(letters, digits, spaces, _ and -; no folder and no .mat; set the folder in data.root)")
    return value


def _school_file(folder: Path, school: str) -> Path:
    """`<folder>/<school>.mat`, or a DataError naming the folder and the .mat files it holds."""
    path = folder / f"{school}.mat"
    if path.is_file():
        return path
    if not folder.is_dir():
        raise DataError(f"Facebook100: folder {folder} does not exist; set data.root (or GNNRISK_DATA) to the "
                        "folder holding the <School>.mat files (nothing is downloaded)")
    found = sorted(p.stem for p in folder.glob("*.mat") if p.is_file())
    there = ", ".join(found) if found else "none"
    raise DataError(f"Facebook100: no file {school}.mat in {folder} (schools there: {there}); "
                    "set data.school to one of them or data.root to another folder (nothing is downloaded)")


def read_facebook100(path: Path) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The adjacency `A` (CSR) and `local_info` (int64, n x 7) of a MATLAB v5 file, checked."""
    try:
        version = matfile_version(str(path))
    except Exception as err:  # scipy raises IndexError, ValueError, MatReadError... on non-MAT bytes
        raise DataError(f"{path}: not a MATLAB .mat file ({type(err).__name__}); expected the Facebook100 "
                        "file of a school (MATLAB v5)") from err
    if version[0] != 1:
        kind = {0: "MATLAB v4", 2: "MATLAB v7.3 (HDF5)"}.get(version[0], f"MAT version {version}")
        raise DataError(f"{path}: a {kind} file; expected MATLAB v5 as Facebook100 is distributed "
                        "(re-save it with MATLAB's save -v7 or scipy.io.savemat)")
    try:
        mat = scipy.io.loadmat(str(path), variable_names=["A", "local_info"])
    except Exception as err:  # truncated or corrupt content
        raise DataError(f"{path}: cannot read it as a MATLAB v5 file ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''})") from err
    missing = [k for k in ("A", "local_info") if k not in mat]
    if missing:
        raise DataError(f"{path}: has no variable {' or '.join(missing)}; a Facebook100 file holds the adjacency "
                        "A (n x n) and local_info (n x 7)")
    adjacency, info = mat["A"], mat["local_info"]
    dense = isinstance(adjacency, np.ndarray) and adjacency.ndim == 2 and adjacency.dtype.kind in "biuf"
    if not (dense or scipy.sparse.issparse(adjacency)):
        raise DataError(f"{path}: A is {type(adjacency).__name__} {getattr(adjacency, 'dtype', '')}; expected a "
                        "numeric n x n (sparse) matrix")
    adjacency = scipy.sparse.csr_matrix(adjacency)
    if adjacency.dtype.kind not in "biuf" or adjacency.shape[0] != adjacency.shape[1]:
        raise DataError(f"{path}: A is {adjacency.shape[0]} x {adjacency.shape[1]} {adjacency.dtype}; expected a "
                        "square numeric matrix")
    if not isinstance(info, np.ndarray) or info.ndim != 2 or info.dtype.kind not in "biuf":
        raise DataError(f"{path}: local_info is {type(info).__name__} {getattr(info, 'dtype', '')} of shape "
                        f"{getattr(info, 'shape', '?')}; expected an n x {NUM_INFO_COLUMNS} numeric matrix")
    if info.shape != (adjacency.shape[0], NUM_INFO_COLUMNS):
        raise DataError(f"{path}: local_info is {info.shape[0]} x {info.shape[1]} but A is {adjacency.shape[0]} x "
                        f"{adjacency.shape[1]}; expected local_info n x {NUM_INFO_COLUMNS} (status, gender, major, "
                        "minor, housing, year, high school) for A n x n")
    if info.shape[0] == 0:
        raise DataError(f"{path}: the graph has no nodes")
    if info.dtype.kind == "f" and not (np.isfinite(info).all() and np.array_equal(info, np.round(info))):
        raise DataError(f"{path}: local_info holds non-integer or NaN values; expected integer codes (0 = missing)")
    info = info.astype(np.int64)
    if (info < 0).any():
        raise DataError(f"{path}: local_info holds negative codes; expected integer codes >= 0 (0 = missing)")
    if adjacency.nnz and not np.isfinite(adjacency.data).all():
        raise DataError(f"{path}: A holds NaN or infinite entries")
    return adjacency, info


def one_hot(columns: np.ndarray) -> np.ndarray:
    """Dummies of each column in turn, its sorted non-zero values as categories; 0 (missing) is all-zero."""
    blocks = []
    for column in columns.T:  # a handful of columns; each encoded at once over all nodes
        categories = np.unique(column[column > 0])
        block = np.zeros((column.size, categories.size), dtype=np.float32)
        rows = np.flatnonzero(column > 0)
        block[rows, np.searchsorted(categories, column[rows])] = 1.0
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def preprocess(adjacency: scipy.sparse.csr_matrix, info: np.ndarray, target: str, min_count: int,
               path: Path, group: str | None = None) -> Data:
    """GAP's graph of a school: labelled nodes, one-hot features, no loops, no isolated nodes, no small classes;
    with `group`, that column's values as the protected group (`data.group`, `data.group_names`)."""
    attributes = info[:, : len(COLUMNS)]
    t = COLUMNS.index(target)
    values = attributes[:, t]
    labelled = values > 0
    if not labelled.any():
        raise DataError(f"{path}: no node has a value for target {target!r} (all 0 = missing)")
    _, y = np.unique(values, return_inverse=True)  # sorted values; 0 first when present
    y = y.reshape(-1) - (0 if labelled.all() else 1)
    x = one_hot(np.delete(attributes, t, axis=1))

    coo = adjacency.tocoo()
    nonzero = coo.data != 0
    edge_index = torch.from_numpy(np.stack([coo.row[nonzero], coo.col[nonzero]]).astype(np.int64))
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    num_nodes = info.shape[0]
    data = Data(x=torch.from_numpy(x), y=torch.from_numpy(y).long(),
                edge_index=to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    if group is not None:
        data.group = torch.from_numpy(attributes[:, COLUMNS.index(group)].astype(np.int64))
    data = data.subgraph(torch.from_numpy(labelled))
    num_labelled = data.num_nodes
    data = data.subgraph(degree(data.edge_index[0], data.num_nodes) > 0)
    num_tied = data.num_nodes
    if data.num_nodes == 0:
        raise DataError(f"{path}: no labelled node (target {target!r}) has a tie to another labelled node")

    counts = torch.bincount(data.y)
    present = counts[counts > 0]
    if present.numel() < 2:
        raise ConfigError("data.target", target, f"{path.name} has a single class of {target!r} among its "
                          "labelled, connected nodes; node classification needs 2: choose another target")
    kept = counts >= min_count
    if int(kept.sum()) < 2:
        sizes = sorted(present.tolist(), reverse=True)
        raise ConfigError("data.min_class_count", min_count,
                          f"leaves {int(kept.sum())} class(es) of target {target!r} in {path.name} (largest class "
                          f"sizes after preprocessing: {', '.join(map(str, sizes[:10]))}"
                          f"{', ...' if len(sizes) > 10 else ''}); node classification needs 2: set at most {sizes[1]}")
    data = data.subgraph(kept[data.y])
    data.y = (torch.cumsum(kept.long(), 0) - 1)[data.y]
    if group is not None:  # the values left after preprocessing, in order; 0 (not given) is its own group
        values, data.group = torch.unique(data.group, return_inverse=True)
        data.group_names = [f"{group}_{'missing' if v == 0 else v}" for v in values.tolist()]
    log.info("%s: removed %d of %d nodes: %d without %s, %d without ties, %d in %d class(es) under %d nodes",
             path.name, num_nodes - data.num_nodes, num_nodes, num_nodes - num_labelled, target,
             num_labelled - num_tied, num_tied - data.num_nodes, int((~kept & (counts > 0)).sum()), min_count)
    return data
