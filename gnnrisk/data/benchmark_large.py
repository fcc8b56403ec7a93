"""The large benchmark graphs (Reddit, ogbn-arxiv, ogbn-products) from their original files, memory checked first.

`gnnrisk.data.benchmark.load_benchmark` checks the settings, the files' presence and sizes, then calls
`load_large`. The formats, as PyG's `Reddit` and OGB's `PygNodePropPredDataset` read them:

- `reddit` (Hamilton et al., "Inductive Representation Learning on Large Graphs", 2017, as PyG and DGL
  distribute it, `reddit.zip`): `reddit_data.npz` with `feature` (n x d), `label` (n) and `node_types` (n;
  1/2/3 = train/val/test, the official split), and `reddit_graph.npz`, a sparse matrix written by
  `scipy.sparse.save_npz` (arrays `format`, `shape`, `row`/`col` for COO, the original, or `indices`/`indptr`
  for CSR/CSC; `data` is not read, as PyG ignores it). Both are read with `allow_pickle=False`, only the
  arrays named here: an object array is refused, never unpickled.
- `ogbn_arxiv`, `ogbn_products` (OGB's `arxiv.zip`, `products.zip`; the contents of its `arxiv/` or
  `products/` folder): gzipped headerless CSVs `raw/edge.csv.gz` (src,dst per line), `raw/node-feat.csv.gz`
  (d numbers per node), `raw/node-label.csv.gz` (one class per node), `raw/num-node-list.csv.gz` and
  `raw/num-edge-list.csv.gz` (one number each: one graph); the official split in
  `split/<time|sales_ranking>/{train,valid,test}.csv.gz` (one node index per line). arxiv's edges are
  directed citations, products lists each edge once (OGB adds the inverse): both are made undirected.

Before a large array is read, the memory that reading and building the graph needs is estimated from the
npz members' headers (shape and dtype) or from num-node-list, num-edge-list and node-feat's first line, and
refused in one line above `data.max_memory_gb` (default: the memory available when the run starts). The
graph is then made undirected without self-loops or duplicates and nodes without ties are removed, as
`benchmark.build_graph` does, in vectorised numpy that keeps few copies of the edges.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data

from gnnrisk.data.npz import labels_of, read_npz
from gnnrisk.errors import DataError

EDGE_BYTES = 48  # per edge beyond the arrays as read: keys, their unique sort, both directions, int64 pairs
CSV_FLOAT_BYTES, CSV_INT_BYTES = 8, 16  # pandas' parse of one float value / one int64 pair (chunks, concat)
REDDIT_DATA = ("feature", "label", "node_types")
SPARSE_KEYS = {"coo": ("row", "col"), "csr": ("indices", "indptr"), "csc": ("indices", "indptr")}
LOW = np.int64(2**32 - 1)  # the low 32 bits of an edge key
Masks = tuple[np.ndarray, np.ndarray, np.ndarray]


def load_large(kind: str, folder: Path, paths: list[Path], limit: int, max_gb: float | None, official: bool,
               drop_isolated: bool) -> Data:
    """The graph of `paths` (reddit's two npz, or OGB's raw CSVs then the split files) with the official masks."""
    if kind == "reddit":
        x, y, src, dst, masks = read_reddit(folder, paths[0], paths[1], limit, max_gb)
    else:
        x, y, src, dst, masks = read_ogb(folder, paths[:5], paths[5:] if official else [], max_gb)
    return build_large_graph(x, y, src, dst, masks if official else None, drop_isolated, folder)


# --- memory ------------------------------------------------------------------------------------------------

def available_memory() -> int | None:
    """Bytes of memory available now (psutil if installed, else sysconf); None where neither tells."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_bytes(n: int, d: int, x_read: int, edges: int, edge_read: int) -> int:
    """Peak bytes of reading and building a graph: features as read (`x_read` bytes a value), their float32 copy
    when nodes are removed and a finiteness mask; edges as read (`edge_read` bytes an edge), `EDGE_BYTES` more."""
    return n * d * (x_read + 5) + edges * (edge_read + EDGE_BYTES) + n * 32


def check_memory(folder: Path, needed: int, what: str, max_gb: float | None) -> None:
    """Refuse in one line, before anything large is read, when `needed` bytes exceed the limit."""
    if max_gb is not None:
        if needed > max_gb * 2**30:
            raise DataError(f"{folder}: reading and building the graph ({what}) needs about {needed / 2**30:.3g} GB, "
                            f"above data.max_memory_gb={max_gb:g}; not read (raise data.max_memory_gb if the "
                            "machine has the memory)")
        return
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(f"{folder}: reading and building the graph ({what}) needs about {needed / 2**30:.3g} GB, "
                        f"above the {available / 2**30:.3g} GB available now (data.max_memory_gb=null); not read "
                        "(free memory, or set data.max_memory_gb to try anyway)")


# --- reddit ------------------------------------------------------------------------------------------------

def npy_headers(path: Path, keys: tuple[str, ...], layout: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of the npz members `keys`, from their .npy headers only; an object dtype refused."""
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [k for k in keys if f"{k}.npy" not in names]
            if missing:
                raise DataError(f"{path}: has no array {', '.join(missing)}; expected {layout}")
            for key in keys:
                with archive.open(f"{key}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(member)
                if dtype.hasobject:
                    raise DataError(f"{path}: array {key!r} holds Python objects (pickled data); refused: "
                                    "unpickling it could run code stored in the file; expected numeric arrays")
                out[key] = (tuple(shape), dtype)
    except DataError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise DataError(f"{path}: cannot read it as an .npz archive ({type(err).__name__}: {detail}); "
                        f"expected {layout}") from err
    return out


def _integer_array(path: Path, name: str, array: np.ndarray, ndim: int = 1) -> np.ndarray:
    if array.ndim != ndim or array.dtype.kind not in "iu":
        raise DataError(f"{path}: array {name!r} is {array.dtype} of shape {array.shape}; expected a "
                        f"{ndim}-D integer array")
    return array


def read_reddit(folder: Path, data_path: Path, graph_path: Path, limit: int, max_gb: float | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Masks]:
    """Features, labels, edge endpoints and the node_types masks of PyG's Reddit files."""
    data_layout = "PyG's Reddit reddit_data.npz (arrays feature n x d, label n, node_types n)"
    graph_layout = "a scipy.sparse.save_npz matrix (arrays format, shape, row/col or indices/indptr)"
    heads = npy_headers(data_path, REDDIT_DATA, data_layout)
    (x_shape, x_dtype) = heads["feature"]
    if len(x_shape) != 2 or x_dtype.kind not in "biuf":
        raise DataError(f"{data_path}: array 'feature' is {x_dtype} of shape {x_shape}; expected a 2-D numeric array")
    n, d = x_shape
    meta = read_npz(graph_path, ("format", "shape"), limit, graph_layout)
    fmt, shape = meta["format"], meta["shape"]
    fmt = fmt.item().decode("ascii", "replace") if fmt.dtype.kind == "S" and fmt.size == 1 else \
        (fmt.item() if fmt.dtype.kind == "U" and fmt.size == 1 else None)
    if fmt not in SPARSE_KEYS:
        raise DataError(f"{graph_path}: sparse format {meta['format']!r}; expected coo, csr or csc "
                        f"({graph_layout})")
    _integer_array(graph_path, "shape", shape)
    if shape.tolist() != [n, n]:
        raise DataError(f"{graph_path}: shape is {shape.tolist()}; expected [{n}, {n}] for the {n} nodes of "
                        f"{data_path.name}")
    keys = SPARSE_KEYS[fmt]
    edge_heads = npy_headers(graph_path, keys, graph_layout)
    (e_shape, e_dtype) = edge_heads[keys[0]]
    if len(e_shape) != 1:
        raise DataError(f"{graph_path}: array {keys[0]!r} has shape {e_shape}; expected a 1-D integer array")
    edges = e_shape[0]
    check_memory(folder, estimate_bytes(n, d, x_dtype.itemsize, edges, 2 * e_dtype.itemsize),
                 f"{n:,} nodes x {d} features, {edges:,} edges", max_gb)

    arrays = read_npz(data_path, REDDIT_DATA, limit, data_layout)
    y = labels_of(data_path, arrays["label"], n, "label")
    types = _integer_array(data_path, "node_types", arrays["node_types"])
    if types.shape[0] != n or not np.isin(types, (1, 2, 3)).all():
        raise DataError(f"{data_path}: node_types must hold 1, 2 or 3 (train/val/test) for each of the {n} nodes")
    masks = (types == 1, types == 2, types == 3)
    x = _features(data_path, "feature", arrays.pop("feature"))
    del arrays
    parts = read_npz(graph_path, keys, limit, graph_layout)
    if fmt == "coo":
        src, dst = (_integer_array(graph_path, k, parts[k]) for k in keys)
        if src.shape != dst.shape:
            raise DataError(f"{graph_path}: row and col have {src.size} and {dst.size} entries; expected as many")
    else:
        indices, indptr = (_integer_array(graph_path, k, parts[k]).astype(np.int64, copy=False) for k in keys)
        if indptr.size != n + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != indices.size:
            raise DataError(f"{graph_path}: indices and indptr do not form a {fmt} matrix of shape {n} x {n}")
        outer = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        src, dst = (outer, indices) if fmt == "csr" else (indices, outer)
    return x, y, src, dst, masks


def _features(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    """float32 features, NaN and infinities refused."""
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise DataError(f"{path}: {name} is {x.dtype} of shape {x.shape}; expected a 2-D numeric array")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: {name} holds NaN or infinite values")
    return x


# --- OGB raw CSVs ------------------------------------------------------------------------------------------

def _gz_lines(path: Path, what: str, max_chars: int = 1 << 20) -> list[str]:
    """The non-empty lines at the start of a gzipped text file (up to `max_chars` characters)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            text = handle.read(max_chars) if max_chars else handle.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise DataError(f"{path}: cannot read it as gzipped text ({type(err).__name__}: {detail}); expected "
                        f"{what}") from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def _count(path: Path) -> int:
    """The one non-negative integer of num-node-list / num-edge-list (OGB's one-graph files)."""
    what = "one line with a non-negative integer (one graph)"
    lines = _gz_lines(path, what)
    if len(lines) != 1 or not lines[0].isdigit():
        raise DataError(f"{path}: holds {len(lines)} line(s) starting {lines[:1]}; expected {what}")
    return int(lines[0])


def read_gz_csv(path: Path, dtype: type, what: str) -> np.ndarray:
    """A headerless gzipped CSV as a 2-D array of `dtype`; one DataError line naming the file otherwise."""
    try:
        frame = pd.read_csv(path, compression="gzip", header=None, dtype=dtype)
    except (ValueError, OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError) as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise DataError(f"{path}: cannot read it as a gzipped CSV of {what} ({type(err).__name__}: {detail})") from err
    return frame.to_numpy()


def read_ogb(folder: Path, raw: list[Path], split: list[Path], max_gb: float | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Masks | None]:
    """Features, labels, edge endpoints and (when `split` names the three files) the official masks."""
    edge_path, feat_path, label_path, nodes_path, edges_path = raw
    n, num_edges = _count(nodes_path), _count(edges_path)
    first = _gz_lines(feat_path, "comma-separated numbers, one line per node", max_chars=0)
    d = first[0].count(",") + 1 if first else 0
    check_memory(folder, estimate_bytes(n, d, CSV_FLOAT_BYTES, num_edges, CSV_INT_BYTES),
                 f"{n:,} nodes x {d} features, {num_edges:,} edges", max_gb)

    edges = read_gz_csv(edge_path, np.int64, "integer pairs src,dst")
    if edges.shape != (num_edges, 2):
        raise DataError(f"{edge_path}: {edges.shape[0]} lines of {edges.shape[1]} value(s); expected {num_edges} "
                        f"(num-edge-list) lines of src,dst")
    src, dst = edges[:, 0], edges[:, 1]
    y = read_gz_csv(label_path, np.int64, "class indices, one per line")
    if y.ndim != 2 or y.shape[1] != 1:
        raise DataError(f"{label_path}: {y.shape[1]} values a line; expected one class index per line")
    y = labels_of(label_path, y[:, 0], n, "node-label")
    x = read_gz_csv(feat_path, np.float32, "numbers, one line per node")
    if x.shape != (n, d):
        raise DataError(f"{feat_path}: {x.shape[0]} lines of {x.shape[1]} values; expected {n} (num-node-list) "
                        f"lines of {d} (its first line)")
    x = _features(feat_path, "node-feat", x)

    masks = None
    if split:
        indices = []
        for path in split:
            idx = read_gz_csv(path, np.int64, "node indices, one per line")
            if idx.ndim != 2 or idx.shape[1] != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                raise DataError(f"{path}: expected one node index in 0..{n - 1} per line")
            indices.append(idx[:, 0])
        if indices and np.bincount(np.concatenate(indices), minlength=n).max(initial=0) > 1:
            raise DataError(f"{split[0].parent}: a node is listed twice in train/valid/test; expected disjoint sets")
        masks = tuple(np.zeros(n, dtype=bool) for _ in indices)
        for mask, idx in zip(masks, indices):
            mask[idx] = True
    return x, y, src, dst, masks


# --- the graph ---------------------------------------------------------------------------------------------

def undirected_edges(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """2 x E' int64 edge_index: both directions of each distinct non-loop pair, sorted by (row, col).

    A pair is the key `row << 32 | col` (shifts, not int64 division, which is slow); keys are sorted in place
    (numpy's hash-based `np.unique` is slower and larger on tens of millions of keys), and at most about
    `EDGE_BYTES` bytes an input edge are held besides `src` and `dst`.
    """
    if n > 2**31:
        raise DataError(f"{n} nodes: more than the 2**31 this reader handles")
    key = np.minimum(src, dst).astype(np.int64)
    key <<= 32
    key |= np.maximum(src, dst)  # one key lo << 32 | hi per undirected pair
    key.sort()
    keep = np.empty(key.size, dtype=bool)
    keep[:1] = True
    np.not_equal(key[1:], key[:-1], out=keep[1:])  # first of each run of equal keys
    keep &= (key >> 32) != (key & LOW)  # no self-loops
    key = key[keep]
    del keep
    both = np.empty(2 * key.size, dtype=np.int64)
    both[:key.size] = key
    np.left_shift(key & LOW, 32, out=both[key.size:])
    both[key.size:] |= key >> 32  # the reverse direction hi << 32 | lo
    del key
    both.sort()
    edge_index = np.empty((2, both.size), dtype=np.int64)
    np.right_shift(both, 32, out=edge_index[0])
    np.bitwise_and(both, LOW, out=edge_index[1])
    return edge_index


def build_large_graph(x: np.ndarray, y: np.ndarray, src: np.ndarray, dst: np.ndarray, masks: Masks | None,
                      drop_isolated: bool, folder: Path) -> Data:
    """Undirected, loop-free, coalesced graph with the masks given; isolated nodes removed when asked."""
    n = x.shape[0]
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise DataError(f"{folder}: edges refer to nodes outside 0..{n - 1} (the files have {n} nodes)")
    edge_index = undirected_edges(src, dst, n)
    if drop_isolated:  # GAP's loaders (RemoveIsolatedNodes)
        tied = np.zeros(n, dtype=bool)
        tied[edge_index[0]] = True
        if not tied.any():
            raise DataError(f"{folder}: no node has a tie to another node")
        if not tied.all():
            new_id = np.cumsum(tied) - 1  # monotone: the edges stay sorted
            edge_index[0] = new_id[edge_index[0]]
            edge_index[1] = new_id[edge_index[1]]
            x, y = x[tied], y[tied]
            masks = None if masks is None else tuple(m[tied] for m in masks)
            n = int(tied.sum())
    data = Data(x=torch.from_numpy(np.ascontiguousarray(x)), y=torch.from_numpy(y),
                edge_index=torch.from_numpy(edge_index), num_nodes=n)
    if masks is not None:
        data.train_mask, data.val_mask, data.test_mask = (torch.from_numpy(np.ascontiguousarray(m)) for m in masks)
    return data
