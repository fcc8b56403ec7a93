"""The DP-GNN literature's benchmark graphs from local files in their original formats, never downloaded.

`data.dataset` names one of:

- `amazon_computers`, `amazon_photo`: Amazon co-purchase graphs of Shchur et al., "Pitfalls of Graph Neural
  Network Evaluation" (2018), `amazon_electronics_{computers,photo}.npz` of github.com/shchur/gnn-benchmark:
  CSR arrays `adj_*` (the graph) and `attr_*` (bag-of-words features), `labels`. As PyG's `read_npz`, the
  features are made binary (`x > 0` -> 1).
- `facebook_page_page`: the Facebook Page-Page network of Rozemberczki et al., "Multi-scale Attributed Node
  Embedding" (MUSAE), as PyG distributes it: `facebook.npz` with `features` (n x d), `target` (n) and
  `edges` (E x 2).
- `twitch_de`, `twitch_en`, `twitch_es`, `twitch_fr`, `twitch_pt`, `twitch_ru`: the MUSAE Twitch gamer
  networks, one per language, `<LANG>.npz` (e.g. `EN.npz`) in the same layout.
- `chameleon`, `squirrel`: the Wikipedia networks with Geom-GCN's five traffic classes (Pei et al., ICLR
  2020), geom-gcn's `out1_node_feature_label.txt` (a header line, then `id<TAB>f1,f2,...<TAB>label`) and
  `out1_graph_edges.txt` (a header line, then `src<TAB>dst`).
- `reddit`, `ogbn_arxiv`, `ogbn_products`: the large graphs (Reddit of GraphSAGE as PyG distributes it, OGB's
  raw CSVs), read by `gnnrisk.data.benchmark_large`, whose docstring gives their formats; their official
  splits can be chosen (`data.split.kind`) and the memory they will take is estimated before any large array
  is read (`data.max_memory_gb`).

The files lie under `<data.root>/<dataset>/`. Every setting is checked before a file is opened; a file larger
than `data.max_file_mb` (or an archive whose arrays would unpack to more) is refused before it is read.
`.npz` files are read with `np.load(..., allow_pickle=False)` and only the arrays named above are read: an
object (pickled) array among them is refused, never unpickled (PyG's FacebookPagePage and Twitch readers pass
`allow_pickle=True`, which would run code stored in the file).

Every graph is made undirected, self-loops and duplicate edges removed; features are float32, labels the
file's class indices 0..C-1; nodes without ties are removed when `data.remove_isolated` (default, as GAP's
loaders); then the train/val/test split of `data.split.kind`: `gap` (default) as GAP's code splits the graph
(the official split for ogbn_arxiv, else a seeded random one, GAP's 75/10/15 by default), `random`, or
`official` (reddit, ogbn_arxiv, ogbn_products only); last a seeded inductive partition.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.utils import degree, to_undirected

from gnnrisk.data.npz import labels_of, numeric_array, read_npz
from gnnrisk.data.splits import attach_random_splits, check_shares, inductive_masks
from gnnrisk.errors import ConfigError, DataError, check_choice, check_number

TWITCH = ("de", "en", "es", "fr", "pt", "ru")
SHCHUR_URL = "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/"
MUSAE_URL = "https://graphmining.ai/datasets/ptg/"
GEOM_GCN_URL = ("https://raw.githubusercontent.com/graphdml-uiuc-jlu/geom-gcn/"
                "f1fc0d14b3b019c562737240d06ec83b07d16a8f/new_data/")
NODE_FILE, EDGE_FILE = "out1_node_feature_label.txt", "out1_graph_edges.txt"
REDDIT_URL = "https://data.dgl.ai/dataset/reddit.zip"  # PyG's Reddit: reddit_data.npz, reddit_graph.npz
OGB_URL = "http://snap.stanford.edu/ogb/data/nodeproppred/"
OGB_RAW = tuple(f"raw/{name}.csv.gz" for name in ("edge", "node-feat", "node-label", "num-node-list", "num-edge-list"))

# dataset -> (format, file names under <root>/<dataset>/, where the files can be obtained)
DATASETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "amazon_computers": ("shchur", ("amazon_electronics_computers.npz",),
                         SHCHUR_URL + "amazon_electronics_computers.npz"),
    "amazon_photo": ("shchur", ("amazon_electronics_photo.npz",), SHCHUR_URL + "amazon_electronics_photo.npz"),
    "facebook_page_page": ("musae", ("facebook.npz",), MUSAE_URL + "facebook.npz"),
    **{f"twitch_{lang}": ("musae", (f"{lang.upper()}.npz",), f"{MUSAE_URL}twitch/{lang.upper()}.npz")
       for lang in TWITCH},
    "chameleon": ("geom_gcn", (NODE_FILE, EDGE_FILE), GEOM_GCN_URL + "chameleon/"),
    "squirrel": ("geom_gcn", (NODE_FILE, EDGE_FILE), GEOM_GCN_URL + "squirrel/"),
    "reddit": ("reddit", ("reddit_data.npz", "reddit_graph.npz"), REDDIT_URL),
    "ogbn_arxiv": ("ogb", OGB_RAW, OGB_URL + "arxiv.zip"),
    "ogbn_products": ("ogb", OGB_RAW, OGB_URL + "products.zip"),
}
# how to place a downloaded archive's files under <root>/<dataset>/
UNPACK = {"reddit": "unzipped: the archive holds the two files",
          "ogbn_arxiv": "unzipped: the contents of the archive's arxiv/ folder, raw/ and split/",
          "ogbn_products": "unzipped: the contents of the archive's products/ folder, raw/ and split/"}
# the dataset's official split: the files under <root>/<dataset>/ that hold it (none: in the data files)
OFFICIAL_SPLITS: dict[str, tuple[str, ...]] = {
    "reddit": (),  # reddit_data.npz's node_types: 1/2/3 = train/val/test
    "ogbn_arxiv": tuple(f"split/time/{part}.csv.gz" for part in ("train", "valid", "test")),
    "ogbn_products": tuple(f"split/sales_ranking/{part}.csv.gz" for part in ("train", "valid", "test")),
}
GAP_OFFICIAL = ("ogbn_arxiv",)  # GAP's early loader used OGB's time split for arxiv; random for the others
SPLIT_KINDS = ("gap", "random", "official")
SHCHUR_ARRAYS = ("adj_data", "adj_indices", "adj_indptr", "adj_shape",
                 "attr_data", "attr_indices", "attr_indptr", "attr_shape", "labels")
MUSAE_ARRAYS = ("features", "target", "edges")
ROW = re.compile(r"at row (\d+)")  # numpy.loadtxt's 0-based row of a value it cannot convert


def load_benchmark(cfg: DictConfig, seed: int) -> Data:
    """Load `data.dataset` from `<data.root>/<dataset>/` with its train/val/test split and an inductive partition."""
    dataset = check_choice("data.dataset", cfg.get("dataset"), DATASETS)
    root = cfg.get("root")
    if not isinstance(root, str) or not root.strip():
        raise ConfigError("data.root", root, f"expected the folder that holds {dataset}/ with the dataset's files")
    drop_isolated = cfg.get("remove_isolated", True)
    if not isinstance(drop_isolated, bool):
        raise ConfigError("data.remove_isolated", drop_isolated, "expected true or false")
    max_mb = check_number("data.max_file_mb", cfg.get("max_file_mb", 2000), low=0.0, low_open=True)
    split_cfg = cfg.get("split") or {}
    train, val = split_cfg.get("train", 0.75), split_cfg.get("val", 0.1)
    check_shares(train, val)
    fraction = check_number("data.split.inductive_fraction", split_cfg.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)
    split_kind = check_choice("data.split.kind", split_cfg.get("kind", "gap"), SPLIT_KINDS)
    if split_kind == "official" and dataset not in OFFICIAL_SPLITS:
        raise ConfigError("data.split.kind", split_kind, f"{dataset} has no official split; use random or gap "
                          f"(official: {', '.join(OFFICIAL_SPLITS)})")
    official = split_kind == "official" or (split_kind == "gap" and dataset in GAP_OFFICIAL)
    max_gb = cfg.get("max_memory_gb")
    if max_gb is not None:
        check_number("data.max_memory_gb", max_gb, low=0.0, low_open=True)
    min_count = cfg.get("min_class_count")
    if min_count is not None:
        min_count = int(check_number("data.min_class_count", min_count, low=1, integer=True))

    kind, names, url = DATASETS[dataset]
    if official:
        names = names + OFFICIAL_SPLITS[dataset]
    folder = Path(root).expanduser() / dataset
    paths = [folder / name for name in names]
    missing = [name for name, p in zip(names, paths) if not p.is_file()]
    if missing:
        which = "" if len(missing) == len(names) else f" (missing: {', '.join(missing)})"
        how = f" ({UNPACK[dataset]})" if dataset in UNPACK else ""
        raise DataError(f"{dataset}: folder {folder} must hold {', '.join(names)}{which}; "
                        f"nothing is downloaded: get the file(s) from {url} and copy them there{how}, "
                        f"or set data.root to the folder that holds {dataset}/")
    limit = int(max_mb * 2**20)
    for path in paths:
        size = path.stat().st_size
        if size > limit:
            raise DataError(f"{path}: {size / 2**20:.3g} MB, above data.max_file_mb={max_mb:g}; not read "
                            "(raise data.max_file_mb if the file is the right one)")

    generator = torch.Generator().manual_seed(seed)
    if kind in ("reddit", "ogb"):  # the large graphs: memory estimated first, official splits
        from gnnrisk.data.benchmark_large import load_large
        data = load_large(kind, folder, paths, limit, max_gb, official, drop_isolated)
    else:
        if kind == "shchur":
            x, y, edges = read_shchur_npz(paths[0], limit)
        elif kind == "musae":
            x, y, edges = read_musae_npz(paths[0], limit)
        else:
            x, y, edges = read_geom_gcn(paths[0], paths[1])
        data = build_graph(x, y, edges, drop_isolated, folder)

    if min_count is not None:
        data = drop_small_classes(data, min_count, dataset)
    if official:  # the masks came with the graph (restricted to the nodes kept)
        data.ind_train_mask, data.ind_test_mask = inductive_masks(data.num_nodes, generator, fraction)
    else:
        attach_random_splits(data, train, val, fraction, generator)
    data.name = dataset
    return data


def drop_small_classes(data: Data, min_count: int, dataset: str) -> Data:
    """Remove the nodes of classes with fewer than `min_count` nodes (GAP's FilterClassByCount), re-index labels."""
    counts = torch.bincount(data.y)
    kept = counts >= min_count
    if int(kept.sum()) < 2:
        sizes = sorted(counts[counts > 0].tolist(), reverse=True)
        raise ConfigError("data.min_class_count", min_count, f"leaves {int(kept.sum())} class(es) of {dataset} "
                          f"(largest: {', '.join(map(str, sizes[:5]))}); node classification needs 2"
                          + (f": set at most {sizes[1]}" if len(sizes) > 1 else ""))
    data = data.subgraph(kept[data.y])
    data.y = (torch.cumsum(kept.long(), 0) - 1)[data.y]
    return data


# --- .npz ----------------------------------------------------------------------------------------------

def _csr(path: Path, arrays: dict[str, np.ndarray], prefix: str) -> tuple[tuple[int, int], np.ndarray,
                                                                          np.ndarray, np.ndarray]:
    """(shape, row, col, value) of the CSR matrix stored as `<prefix>_data/_indices/_indptr/_shape`, checked."""
    shape = numeric_array(path, f"{prefix}_shape", arrays[f"{prefix}_shape"], 1, "iu")
    indptr = numeric_array(path, f"{prefix}_indptr", arrays[f"{prefix}_indptr"], 1, "iu").astype(np.int64)
    indices = numeric_array(path, f"{prefix}_indices", arrays[f"{prefix}_indices"], 1, "iu").astype(np.int64)
    values = numeric_array(path, f"{prefix}_data", arrays[f"{prefix}_data"], 1)
    if shape.size != 2 or (shape < 0).any():
        raise DataError(f"{path}: {prefix}_shape is {shape.tolist()}; expected [rows, columns]")
    rows, cols = int(shape[0]), int(shape[1])
    if (indptr.size != rows + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any()
            or indptr[-1] != indices.size or indices.size != values.size):
        raise DataError(f"{path}: {prefix}_indptr, {prefix}_indices and {prefix}_data do not form a CSR matrix of "
                        f"shape {rows} x {cols} ({indptr.size} pointers, {indices.size} indices, {values.size} values)")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise DataError(f"{path}: {prefix}_indices refer to columns outside 0..{cols - 1}")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise DataError(f"{path}: {prefix}_data holds NaN or infinite values")
    row = np.repeat(np.arange(rows, dtype=np.int64), np.diff(indptr))
    return (rows, cols), row, indices, values


def read_shchur_npz(path: Path, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (binary, as PyG's read_npz), labels and edges (2 x E) of a gnn-benchmark .npz."""
    layout = "Shchur et al.'s gnn-benchmark format (arrays " + ", ".join(SHCHUR_ARRAYS) + ")"
    arrays = read_npz(path, SHCHUR_ARRAYS, limit, layout)
    (n, n2), src, dst, weight = _csr(path, arrays, "adj")
    if n != n2:
        raise DataError(f"{path}: adj_shape is {n} x {n2}; expected a square adjacency matrix")
    (rows, cols), r, c, v = _csr(path, arrays, "attr")
    if rows != n:
        raise DataError(f"{path}: attr_shape has {rows} rows for {n} nodes in adj_shape; expected one row per node")
    y = labels_of(path, arrays["labels"], n)
    x = np.zeros((n, cols), dtype=np.float32)
    x[r[v > 0], c[v > 0]] = 1.0  # PyG's read_npz: x[x > 0] = 1
    keep = weight != 0
    return x, y, np.stack([src[keep], dst[keep]])


def read_musae_npz(path: Path, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and edges (2 x E) of PyG's FacebookPagePage / Twitch .npz."""
    layout = "PyG's MUSAE format (arrays features n x d, target n, edges E x 2)"
    arrays = read_npz(path, MUSAE_ARRAYS, limit, layout)
    x = numeric_array(path, "features", arrays["features"], 2)
    edges = numeric_array(path, "edges", arrays["edges"], 2, "iu")
    if edges.shape[1] != 2:
        raise DataError(f"{path}: edges has shape {edges.shape}; expected E x 2 (one row per edge)")
    y = labels_of(path, arrays["target"], x.shape[0], "target")
    if edges.size and (edges.min() < 0 or edges.max() >= x.shape[0]):
        raise DataError(f"{path}: edges refer to nodes outside 0..{x.shape[0] - 1} (features has {x.shape[0]} rows)")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{path}: features hold NaN or infinite values")
    return x.astype(np.float32), y, edges.T.astype(np.int64)


# --- geom-gcn text files -------------------------------------------------------------------------------

def _rows(path: Path, layout: str) -> np.ndarray:
    """The lines after the header, as a numpy string array."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a UTF-8 text file; expected {layout}") from err
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        raise DataError(f"{path}: has no line after the header; expected a header line, then {layout}")
    return np.array(lines[1:], dtype=str)


def _bad_line(path: Path, bad: np.ndarray, layout: str) -> None:
    if bad.any():
        raise DataError(f"{path}: line {int(np.flatnonzero(bad)[0]) + 2} is not {layout}")


def _integers(path: Path, column: np.ndarray, layout: str) -> np.ndarray:
    text = np.char.strip(column)
    _bad_line(path, ~np.char.isdigit(text), layout)  # digits only: non-negative integers
    return text.astype(np.int64)


def read_geom_gcn(node_path: Path, edge_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and edges (2 x E) of geom-gcn's two text files; nodes placed by their ids."""
    layout = "id<TAB>comma-separated features<TAB>label (non-negative integers id and label)"
    rows = _rows(node_path, layout)
    _bad_line(node_path, np.char.count(rows, "\t") != 2, layout)
    ids, _, rest = np.char.partition(rows, "\t").T
    features, _, labels = np.char.rpartition(rest, "\t").T
    ids, labels = _integers(node_path, ids, layout), _integers(node_path, labels, layout)
    commas = np.char.count(features, ",")
    _bad_line(node_path, commas != commas[0], f"{layout}, with as many features as line 2 ({commas[0] + 1})")
    try:
        x = np.loadtxt(features.tolist(), delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as err:
        found = ROW.search(str(err))
        where = f"line {int(found[1]) + 2}" if found else "a line"
        raise DataError(f"{node_path}: {where} has a feature that is not a number; expected {layout}") from err
    if not np.isfinite(x).all():
        _bad_line(node_path, ~np.isfinite(x).all(axis=1), f"{layout}, features finite")
    n = ids.size
    if not np.array_equal(np.sort(ids), np.arange(n)):
        raise DataError(f"{node_path}: the node ids are not 0..{n - 1} each once (a repeated or missing id); "
                        f"expected {layout}")
    order = np.empty(n, dtype=np.int64)
    order[ids] = np.arange(n)
    y = labels_of(node_path, labels[order], n, "the label column")

    edge_layout = "src<TAB>dst (node ids)"
    pairs = _rows(edge_path, edge_layout)
    _bad_line(edge_path, np.char.count(pairs, "\t") != 1, edge_layout)
    src, _, dst = np.char.partition(pairs, "\t").T
    edges = np.stack([_integers(edge_path, src, edge_layout), _integers(edge_path, dst, edge_layout)])
    if edges.size and edges.max() >= n:
        raise DataError(f"{edge_path}: edges refer to node ids outside 0..{n - 1} of {node_path.name}")
    return x[order], y, edges


# --- the graph ---------------------------------------------------------------------------------------------

def build_graph(x: np.ndarray, y: np.ndarray, edges: np.ndarray, drop_isolated: bool, folder: Path) -> Data:
    """Undirected, loop-free, coalesced graph; isolated nodes removed when asked."""
    n = x.shape[0]
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise DataError(f"{folder}: edges refer to nodes outside 0..{n - 1} (the file has {n} nodes)")
    edge_index = torch.from_numpy(np.ascontiguousarray(edges, dtype=np.int64))
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    data = Data(x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), y=torch.from_numpy(y),
                edge_index=to_undirected(edge_index, num_nodes=n), num_nodes=n)
    if drop_isolated:  # GAP's loaders (RemoveIsolatedNodes)
        data = data.subgraph(degree(data.edge_index[0], n) > 0)
        if data.num_nodes == 0:
            raise DataError(f"{folder}: no node has a tie to another node")
    return data

