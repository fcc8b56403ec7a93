"""data=benchmark's large graphs (reddit, ogbn_arxiv, ogbn_products): tiny files in the original formats (PyG's
Reddit npz pair, OGB's gzipped raw CSVs) read back by hand-checked values; splits, memory refusal, bad files."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import contains_self_loops, is_undirected

from gnnrisk.data import benchmark_large, build_dataset
from gnnrisk.data.benchmark import DATASETS, OFFICIAL_SPLITS, load_benchmark
from gnnrisk.errors import ConfigError, DataError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "benchmark.yaml"

# 7 nodes; node 5 only has a self-loop, node 6 no tie: both isolated. Edges one way, one duplicated, one reversed.
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2), (0, 1), (2, 1), (5, 5)]
UNDIRECTED = {(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (0, 2)}
N = 7
FEATURES = np.array([[1, 0, 2], [0, 1, 0], [3, 0, 0], [0, 0, 1], [1, 1, 0], [0, 2, 0], [5, 0, 1]], dtype=np.float32)
LABELS = np.array([0, 1, 2, 1, 0, 2, 1])
NODE_TYPES = np.array([1, 1, 2, 3, 1, 2, 3])  # reddit: 1/2/3 = train/val/test
OGB_SPLIT = {"train": [0, 1, 4, 6], "valid": [2, 5], "test": [3]}


def _cfg(root: Path, dataset: str, **fields: object) -> DictConfig:
    cfg = OmegaConf.load(CONFIG)
    cfg.root, cfg.dataset = str(root), dataset
    for key, value in fields.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def _pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edge_index.t().tolist() if a < b}


def _one_line(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


def _refused(tmp_path: Path, dataset: str, *parts: str, error: type = DataError, **fields: object) -> str:
    with pytest.raises(error) as excinfo:
        load_benchmark(_cfg(tmp_path, dataset, **fields), seed=0)
    return _one_line(excinfo, *parts)


def write_reddit(root: Path, fmt: str = "coo", edges: list[tuple[int, int]] = EDGES, **override: object) -> Path:
    """reddit_data.npz (np.savez) and reddit_graph.npz (scipy.sparse.save_npz, as DGL's reddit.zip)."""
    folder = root / "reddit"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"feature": FEATURES, "label": LABELS, "node_types": NODE_TYPES, **override}
    np.savez(folder / "reddit_data.npz", **{k: v for k, v in arrays.items() if v is not None})
    src, dst = np.array(edges).T
    n = len(arrays["feature"]) if arrays.get("feature") is not None else N
    adj = scipy.sparse.coo_matrix((np.ones(len(edges), dtype=np.float32), (src, dst)), shape=(n, n))
    scipy.sparse.save_npz(folder / "reddit_graph.npz", adj.asformat(fmt))
    return folder


def _gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


def write_ogb(root: Path, dataset: str = "ogbn_arxiv", edges: list[tuple[int, int]] = EDGES,
              features: np.ndarray = FEATURES, labels: np.ndarray = LABELS, split: dict | None = None) -> Path:
    """OGB's raw layout: headerless gzipped CSVs under raw/ and split/<name>/ (node ids = row numbers)."""
    folder = root / dataset
    raw = folder / "raw"
    _gz(raw / "edge.csv.gz", [f"{a},{b}" for a, b in edges])
    _gz(raw / "node-feat.csv.gz", [",".join(f"{v:g}" for v in row) for row in features])
    _gz(raw / "node-label.csv.gz", [str(v) for v in labels])
    _gz(raw / "num-node-list.csv.gz", [str(len(features))])
    _gz(raw / "num-edge-list.csv.gz", [str(len(edges))])
    _gz(raw / "node_year.csv.gz", ["2019"] * len(features))  # arxiv's extra file, not read
    name = {"ogbn_arxiv": "time", "ogbn_products": "sales_ranking"}[dataset]
    for part, ids in (split or OGB_SPLIT).items():
        _gz(folder / "split" / name / f"{part}.csv.gz", [str(i) for i in ids])
    return folder


def _check_tiny(data, dataset: str) -> None:
    assert data.name == dataset and data.num_nodes == 5  # nodes 5 (self-loop only) and 6 (no tie) removed
    assert data.x.dtype == torch.float32 and torch.equal(data.x, torch.from_numpy(FEATURES[:5]))
    assert data.y.dtype == torch.long and data.y.tolist() == LABELS[:5].tolist()
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert _pairs(data.edge_index) == UNDIRECTED and data.edge_index.size(1) == 2 * len(UNDIRECTED)
    order = data.edge_index[0] * data.num_nodes + data.edge_index[1]
    assert torch.equal(order, order.sort().values)  # coalesced, as PyG's to_undirected


@pytest.mark.parametrize("fmt", ["coo", "csr", "csc"])
def test_reddit_reads_the_tiny_graph_with_its_official_split(fmt: str, tmp_path: Path) -> None:
    write_reddit(tmp_path, fmt)
    data = build_dataset(_cfg(tmp_path, "reddit", **{"split.kind": "official"}), seed=0)
    _check_tiny(data, "reddit")
    assert torch.equal(data.train_mask, torch.tensor([True, True, False, False, True]))  # node_types == 1
    assert torch.equal(data.val_mask, torch.tensor([False, False, True, False, False]))
    assert torch.equal(data.test_mask, torch.tensor([False, False, False, True, False]))
    assert torch.equal(data.ind_train_mask, ~data.ind_test_mask)


@pytest.mark.parametrize("dataset", ["ogbn_arxiv", "ogbn_products"])
def test_ogb_reads_the_tiny_graph_with_its_official_split(dataset: str, tmp_path: Path) -> None:
    write_ogb(tmp_path, dataset)
    data = load_benchmark(_cfg(tmp_path, dataset, **{"split.kind": "official"}), seed=0)
    _check_tiny(data, dataset)
    # OGB's train [0, 1, 4, 6], valid [2, 5], test [3]; nodes 5 and 6 removed
    assert data.train_mask.tolist() == [True, True, False, False, True]
    assert data.val_mask.tolist() == [False, False, True, False, False]
    assert data.test_mask.tolist() == [False, False, False, True, False]


def test_isolated_nodes_kept_when_asked(tmp_path: Path) -> None:
    write_ogb(tmp_path, "ogbn_products")
    data = load_benchmark(_cfg(tmp_path, "ogbn_products", remove_isolated=False, **{"split.kind": "official"}), 0)
    assert data.num_nodes == N and data.x.shape == (N, 3) and data.y.tolist() == LABELS.tolist()
    assert _pairs(data.edge_index) == UNDIRECTED and not contains_self_loops(data.edge_index)
    assert data.val_mask.tolist() == [False, False, True, False, False, True, False]


def _ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


@pytest.mark.parametrize(("dataset", "gap_official"), [("reddit", False), ("ogbn_products", False),
                                                       ("ogbn_arxiv", True)])
def test_split_kinds_and_gaps_default(dataset: str, gap_official: bool, tmp_path: Path) -> None:
    """GAP splits Reddit and products at random (75/10/15) and used arxiv's official time split."""
    n = 200
    x, y, types = np.eye(n, 4, dtype=np.float32), np.arange(n) % 2, np.repeat([1, 2, 3], [20, 30, 150])
    split = {"train": range(20), "valid": range(20, 50), "test": range(50, n)}
    if dataset == "reddit":
        write_reddit(tmp_path, edges=_ring(n), feature=x, label=y, node_types=types)
    else:
        write_ogb(tmp_path, dataset, edges=_ring(n), features=x, labels=y, split=split)
    official = (20, 30, 150)
    counts = {}
    for kind in ("gap", "random", "official"):
        data = load_benchmark(_cfg(tmp_path, dataset, **{"split.kind": kind}), seed=3)
        counts[kind] = tuple(int(data[f"{s}_mask"].sum()) for s in ("train", "val", "test"))
        assert (data.train_mask | data.val_mask | data.test_mask).all() and not (data.train_mask & data.val_mask).any()
        assert int(data.ind_train_mask.sum()) == 100
    assert counts["official"] == official and counts["random"] == (150, 20, 30)
    assert counts["gap"] == (official if gap_official else (150, 20, 30))
    a, b = (load_benchmark(_cfg(tmp_path, dataset, **{"split.kind": "random"}), seed=s) for s in (3, 4))
    assert not torch.equal(a.train_mask, b.train_mask)


def test_official_split_is_refused_where_there_is_none(tmp_path: Path) -> None:
    text = _refused(tmp_path / "nowhere", "amazon_photo", "data.split.kind", "no official split", error=ConfigError,
                    **{"split.kind": "official"})
    assert "ogbn_arxiv" in text


@pytest.mark.parametrize(("field", "value"), [("split.kind", "time"), ("split.kind", None), ("max_memory_gb", 0),
                                              ("max_memory_gb", -1), ("max_memory_gb", "lots")])
def test_bad_settings_refused_before_any_file_is_read(field: str, value: object, tmp_path: Path) -> None:
    _refused(tmp_path / "nowhere", "reddit", f"data.{field}", error=ConfigError, **{field: value})


def _no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """np.load and pandas.read_csv fail if called: a refusal must come before any array is read."""
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("an array was read")
    monkeypatch.setattr(np, "load", boom)
    monkeypatch.setattr(pd, "read_csv", boom)


@pytest.mark.parametrize("dataset", ["reddit", "ogbn_arxiv", "ogbn_products"])
def test_memory_refused_in_one_line_before_reading(dataset: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_reddit(tmp_path) if dataset == "reddit" else write_ogb(tmp_path, dataset)
    if dataset != "reddit":  # reddit reads its graph's format and shape (two scalars) first
        _no_reading(monkeypatch)
    text = _refused(tmp_path, dataset, "data.max_memory_gb=1e-09", "not read", "7 nodes x 3 features, 9 edges",
                    max_memory_gb=1e-9)
    assert "GB" in text


def test_memory_default_is_what_is_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_ogb(tmp_path)
    assert benchmark_large.available_memory() > 0
    monkeypatch.setattr(benchmark_large, "available_memory", lambda: 100)
    _refused(tmp_path, "ogbn_arxiv", "available now", "data.max_memory_gb=null", "not read")
    assert load_benchmark(_cfg(tmp_path, "ogbn_arxiv", max_memory_gb=1), seed=0).num_nodes == 5  # set: it rules


def test_reddit_memory_estimate_reads_only_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_reddit(tmp_path)
    read = []
    real = benchmark_large.read_npz
    monkeypatch.setattr(benchmark_large, "read_npz", lambda path, keys, *a: read.append(keys) or real(path, keys, *a))
    _refused(tmp_path, "reddit", "data.max_memory_gb", max_memory_gb=1e-9)
    assert read == [("format", "shape")]


@pytest.mark.parametrize(("which", "key"), [("data", "feature"), ("data", "label"), ("graph", "row")])
def test_object_array_is_refused_not_unpickled(which: str, key: str, tmp_path: Path) -> None:
    folder = write_reddit(tmp_path)
    path = folder / f"reddit_{which}.npz"
    if which == "data":
        arrays = {"feature": FEATURES, "label": LABELS, "node_types": NODE_TYPES, key: np.array([object()] * N)}
    else:
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in archive.files}
        arrays[key] = np.array([object()] * len(arrays[key]), dtype=object)
    np.savez(path, **arrays)
    _refused(tmp_path, "reddit", str(path), f"'{key}'", "pickled", "refused")


@pytest.mark.parametrize("dataset", ["reddit", "ogbn_arxiv", "ogbn_products"])
def test_missing_file_names_its_source_and_nothing_is_downloaded(dataset: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    folder = write_reddit(tmp_path) if dataset == "reddit" else write_ogb(tmp_path, dataset)
    name = DATASETS[dataset][1][1]
    (folder / name).unlink()
    _refused(tmp_path, dataset, str(folder), f"(missing: {name})", DATASETS[dataset][2], "nothing is downloaded")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.zip")) == []


def test_the_sources_are_the_originals() -> None:
    assert DATASETS["reddit"][1:] == (("reddit_data.npz", "reddit_graph.npz"), "https://data.dgl.ai/dataset/reddit.zip")
    assert DATASETS["ogbn_arxiv"][2] == "http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip"
    assert DATASETS["ogbn_products"][2] == "http://snap.stanford.edu/ogb/data/nodeproppred/products.zip"
    assert "raw/num-edge-list.csv.gz" in DATASETS["ogbn_arxiv"][1]
    assert OFFICIAL_SPLITS["ogbn_arxiv"][0] == "split/time/train.csv.gz"
    assert OFFICIAL_SPLITS["ogbn_products"][1] == "split/sales_ranking/valid.csv.gz"


def test_missing_split_files_refused_only_when_the_official_split_is_asked(tmp_path: Path) -> None:
    folder = write_ogb(tmp_path, "ogbn_products")
    (folder / "split" / "sales_ranking" / "test.csv.gz").unlink()
    assert load_benchmark(_cfg(tmp_path, "ogbn_products"), seed=0).num_nodes == 5  # GAP's default: random
    _refused(tmp_path, "ogbn_products", "(missing: split/sales_ranking/test.csv.gz)", "products.zip",
             **{"split.kind": "official"})


@pytest.mark.parametrize(("file", "lines", "words"), [
    ("raw/edge.csv.gz", ["0,1"] * 8 + ["1,7"], "outside 0..6"),
    ("raw/edge.csv.gz", ["0,1"] * 8 + ["1,x"], "cannot read it as a gzipped CSV"),
    ("raw/edge.csv.gz", ["0,1,2"] * 9, "expected 9 (num-edge-list) lines of src,dst"),
    ("raw/num-node-list.csv.gz", ["7", "3"], "one graph"),
    ("raw/num-edge-list.csv.gz", ["nine"], "non-negative integer"),
    ("raw/node-feat.csv.gz", ["1,2,3"] * 6, "expected 7 (num-node-list) lines of 3"),
    ("raw/node-feat.csv.gz", ["1,2,3"] * 6 + ["1,nan,3"], "NaN"),
    ("raw/node-label.csv.gz", ["0"] * 7, "fewer than 2 classes"),
    ("raw/node-label.csv.gz", ["0", "1", "2", "1", "0", "2", ""], "6 entries for 7 nodes"),
    ("split/time/valid.csv.gz", ["2", "9"], "0..6"),
    ("split/time/valid.csv.gz", ["2", "3"], "listed twice"),
])
def test_bad_ogb_files_are_refused_naming_them(file: str, lines: list[str], words: str, tmp_path: Path) -> None:
    folder = write_ogb(tmp_path)
    _gz(folder / file, lines)
    where = str(folder) if "outside" in words or "twice" in words else str(folder / file)
    _refused(tmp_path, "ogbn_arxiv", where, words)


def test_not_gzip_is_refused(tmp_path: Path) -> None:
    folder = write_ogb(tmp_path)
    (folder / "raw" / "edge.csv.gz").write_text("0,1\n1,2\n")
    _refused(tmp_path, "ogbn_arxiv", str(folder / "raw" / "edge.csv.gz"), "cannot read it")


@pytest.mark.parametrize(("override", "words"), [
    ({"node_types": np.array([1, 1, 2, 3, 1, 2, 4])}, "node_types must hold 1, 2 or 3"),
    ({"label": LABELS[:-1]}, "6 entries for 7 nodes"),
    ({"feature": FEATURES[:, 0]}, "2-D numeric"),
    ({"label": None}, "has no array label"),
])
def test_bad_reddit_data_is_refused_naming_the_file(override: dict, words: str, tmp_path: Path) -> None:
    folder = write_reddit(tmp_path, **override)
    _refused(tmp_path, "reddit", str(folder / "reddit_data.npz"), words)


def test_reddit_graph_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    folder = write_reddit(tmp_path)
    scipy.sparse.save_npz(folder / "reddit_graph.npz", scipy.sparse.coo_matrix(np.eye(N + 1)))
    _refused(tmp_path, "reddit", str(folder / "reddit_graph.npz"), "expected [7, 7]")


@pytest.mark.parametrize("drop", [True, False])
def test_the_large_graph_builder_agrees_with_build_graph(drop: bool) -> None:
    """The lean numpy builder gives what benchmark.build_graph (PyG's to_undirected, subgraph) gives."""
    from gnnrisk.data.benchmark import build_graph
    rng = np.random.default_rng(0)
    n, e = 300, 400  # sparse: isolated nodes, duplicates and self-loops occur
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    src[:5] = dst[:5]
    x, y = rng.random((n, 3), dtype=np.float32), rng.integers(0, 3, n)
    masks = tuple(rng.random(n) < 0.5 for _ in range(3))
    ours = benchmark_large.build_large_graph(x, y, src.astype(np.int32), dst, masks, drop, Path("."))
    ref = build_graph(x, y, np.stack([src, dst]), False, Path("."))
    ref.train_mask, ref.val_mask, ref.test_mask = (torch.from_numpy(m) for m in masks)
    if drop:
        from torch_geometric.utils import degree
        ref = ref.subgraph(degree(ref.edge_index[0], n) > 0)
        assert ours.num_nodes < n
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(ours[key], ref[key]), key
    assert ours.num_nodes == ref.num_nodes


def test_gaps_class_filter_drops_small_classes_with_their_nodes(tmp_path: Path) -> None:
    """min_class_count=2 on the tiny graph: of the 5 kept nodes, class 2 has one (node 2) and goes; labels re-indexed."""
    write_ogb(tmp_path, "ogbn_products")
    data = load_benchmark(_cfg(tmp_path, "ogbn_products", min_class_count=2, **{"split.kind": "official"}), seed=0)
    assert data.num_nodes == 4 and data.y.tolist() == [0, 1, 1, 0]  # nodes 0, 1, 3, 4 (labels 0, 1, 1, 0)
    assert data.train_mask.tolist() == [True, True, False, True] and data.test_mask.tolist() == [False, False, True,
                                                                                                   False]
    assert _refused(tmp_path, "ogbn_products", "data.min_class_count", "needs 2", error=ConfigError,
                    min_class_count=3, **{"split.kind": "official"})
