"""data=benchmark: tiny files in each original format (Shchur's .npz, PyG's MUSAE .npz, geom-gcn's text files)
read back by hand-checked values, and every bad input refused in one line naming the field or the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.benchmark import DATASETS, load_benchmark
from gnnrisk.errors import ConfigError, DataError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "benchmark.yaml"

# The tiny graph of every format: 7 nodes; node 5 only has a self-loop, node 6 no tie: both isolated.
# Edges given one way, one duplicated, one reversed: the loaded graph is the undirected set below.
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2), (0, 1), (2, 1), (5, 5)]
UNDIRECTED = {(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (0, 2)}
N = 7
FEATURES = np.array([[1, 0, 2], [0, 1, 0], [3, 0, 0], [0, 0, 1], [1, 1, 0], [0, 2, 0], [5, 0, 1]], dtype=np.float64)
LABELS = np.array([0, 1, 2, 1, 0, 2, 1])


def _cfg(root: Path, dataset: str, **fields: object) -> DictConfig:
    cfg = OmegaConf.load(CONFIG)
    cfg.root, cfg.dataset = str(root), dataset
    for key, value in fields.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def _pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edge_index.t().tolist() if a < b}


def _csr_arrays(prefix: str, matrix: scipy.sparse.csr_matrix) -> dict[str, np.ndarray]:
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices,
            f"{prefix}_indptr": matrix.indptr, f"{prefix}_shape": np.array(matrix.shape)}


def write_shchur(root: Path, dataset: str = "amazon_photo", **override: object) -> Path:
    src, dst = np.array(EDGES).T
    adj = scipy.sparse.csr_matrix((np.ones(len(EDGES)), (src, dst)), shape=(N, N))
    adj.sum_duplicates()
    arrays = {**_csr_arrays("adj", adj), **_csr_arrays("attr", scipy.sparse.csr_matrix(FEATURES)),
              "labels": LABELS, **override}
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DATASETS[dataset][1][0]
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def write_musae(root: Path, dataset: str = "facebook_page_page", **override: object) -> Path:
    arrays = {"features": FEATURES.astype(np.float32), "target": LABELS, "edges": np.array(EDGES), **override}
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DATASETS[dataset][1][0]
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def write_geom_gcn(root: Path, dataset: str = "chameleon", node_lines: list[str] | None = None,
                   edge_lines: list[str] | None = None) -> tuple[Path, Path]:
    """The two text files; node lines written in reverse id order (nodes are placed by id)."""
    if node_lines is None:
        node_lines = [f"{i}\t{','.join(str(int(v)) for v in FEATURES[i])}\t{LABELS[i]}" for i in reversed(range(N))]
    if edge_lines is None:
        edge_lines = [f"{a}\t{b}" for a, b in EDGES]
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    nodes, edges = folder / "out1_node_feature_label.txt", folder / "out1_graph_edges.txt"
    nodes.write_text("node_id\tfeature\tlabel\n" + "\n".join(node_lines) + "\n")
    edges.write_text("node_id\tnode_id\n" + "\n".join(edge_lines) + "\n")
    return nodes, edges


WRITERS = {"amazon_photo": write_shchur, "amazon_computers": write_shchur, "facebook_page_page": write_musae,
           "twitch_en": write_musae, "twitch_pt": write_musae, "chameleon": write_geom_gcn,
           "squirrel": write_geom_gcn}


@pytest.mark.parametrize("dataset", sorted(WRITERS))
def test_each_format_reads_the_tiny_graph(dataset: str, tmp_path: Path) -> None:
    WRITERS[dataset](tmp_path, dataset)
    data = build_dataset(_cfg(tmp_path, dataset, **{"split.train": 0.4, "split.val": 0.2}), seed=0)
    assert data.name == dataset and data.num_nodes == 5  # nodes 5 (self-loop only) and 6 (no tie) removed
    expected_x = FEATURES[:5] if not dataset.startswith("amazon") else (FEATURES[:5] > 0)  # Shchur: binary, as PyG
    assert data.x.dtype == torch.float32 and torch.equal(data.x, torch.tensor(expected_x, dtype=torch.float32))
    assert data.y.dtype == torch.long and data.y.tolist() == LABELS[:5].tolist()
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert _pairs(data.edge_index) == UNDIRECTED and data.edge_index.size(1) == 2 * len(UNDIRECTED)


def test_isolated_nodes_kept_when_asked(tmp_path: Path) -> None:
    write_musae(tmp_path)
    data = load_benchmark(_cfg(tmp_path, "facebook_page_page", remove_isolated=False), seed=0)
    assert data.num_nodes == N and data.y.tolist() == LABELS.tolist()
    assert _pairs(data.edge_index) == UNDIRECTED and not contains_self_loops(data.edge_index)


def test_split_shares_and_determinism(tmp_path: Path) -> None:
    """A larger ring: the shares as configured (of all nodes), disjoint masks, the same split per seed."""
    n = 200
    ring = np.stack([np.arange(n), (np.arange(n) + 1) % n], axis=1)
    write_musae(tmp_path, "twitch_de", features=np.eye(n, 4, dtype=np.float32), target=np.arange(n) % 2,
                edges=ring)
    cfg = _cfg(tmp_path, "twitch_de", **{"split.train": 0.6, "split.val": 0.2, "split.inductive_fraction": 0.25})
    a, b, c = (load_benchmark(cfg, seed) for seed in (3, 3, 4))
    assert (int(a.train_mask.sum()), int(a.val_mask.sum()), int(a.test_mask.sum())) == (120, 40, 40)
    assert not (a.train_mask & a.val_mask).any() and (a.train_mask | a.val_mask | a.test_mask).all()
    assert int(a.ind_train_mask.sum()) == 50 and torch.equal(a.ind_train_mask, ~a.ind_test_mask)
    for key in ("train_mask", "val_mask", "test_mask", "ind_train_mask"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a.train_mask, c.train_mask)
    default = load_benchmark(_cfg(tmp_path, "twitch_de"), seed=0)  # GAP's 75/10/15
    assert (int(default.train_mask.sum()), int(default.val_mask.sum())) == (150, 20)


def _one_line(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


@pytest.mark.parametrize(("field", "value"), [
    ("dataset", "cora"), ("dataset", None), ("root", ""), ("remove_isolated", "yes"), ("max_file_mb", 0),
    ("max_file_mb", "big"), ("split.train", 1.2), ("split.val", -0.1), ("split.inductive_fraction", 1.0),
])
def test_bad_settings_refused_before_any_file_is_read(field: str, value: object, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "nowhere", "amazon_photo")  # no file exists: the settings are refused first
    OmegaConf.update(cfg, field, value)
    with pytest.raises(ConfigError) as excinfo:
        load_benchmark(cfg, seed=0)
    _one_line(excinfo, f"data.{field}")


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_missing_files_name_folder_files_and_source(dataset: str, tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_benchmark(_cfg(tmp_path, dataset), seed=0)
    _, names, url = DATASETS[dataset]
    _one_line(excinfo, str(tmp_path / dataset), *names, url, "nothing is downloaded")


def test_the_sources_are_the_originals() -> None:
    assert DATASETS["amazon_computers"][2].endswith("shchur/gnn-benchmark/raw/master/data/npz/"
                                                    "amazon_electronics_computers.npz")
    assert DATASETS["twitch_ru"][1] == ("RU.npz",) and DATASETS["twitch_ru"][2].endswith("/ptg/twitch/RU.npz")
    assert DATASETS["facebook_page_page"][1] == ("facebook.npz",)
    assert DATASETS["squirrel"][2].endswith("/new_data/squirrel/")


def _refused(tmp_path: Path, dataset: str, *parts: str, **fields: object) -> str:
    with pytest.raises(DataError) as excinfo:
        load_benchmark(_cfg(tmp_path, dataset, **fields), seed=0)
    return _one_line(excinfo, *parts)


def test_object_array_is_refused_not_unpickled(tmp_path: Path) -> None:
    path = write_musae(tmp_path, features=np.array([object()] * N, dtype=object))
    _refused(tmp_path, "facebook_page_page", str(path), "'features'", "pickled", "refused")


def test_unused_object_arrays_are_not_read(tmp_path: Path) -> None:
    """gnn-benchmark files carry names as extra arrays; only the arrays the loader needs are read."""
    write_shchur(tmp_path, class_names=np.array([object()], dtype=object))
    assert load_benchmark(_cfg(tmp_path, "amazon_photo"), seed=0).num_nodes == 5


@pytest.mark.parametrize("content", [b"", b"node_id\tfeature\n1\t2\n", b"\x93NUMPY\x01\x00", b"\x80\x04K\x01."])
def test_not_an_npz_is_refused(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "twitch_en" / "EN.npz"
    path.parent.mkdir()
    path.write_bytes(content)
    _refused(tmp_path, "twitch_en", str(path), "not an .npz")


def test_truncated_npz_is_refused(tmp_path: Path) -> None:
    path = write_shchur(tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    _refused(tmp_path, "amazon_photo", str(path), "cannot read it as an .npz")


@pytest.mark.parametrize(("writer", "dataset", "dropped"), [
    (write_shchur, "amazon_computers", "attr_indptr"), (write_shchur, "amazon_photo", "labels"),
    (write_musae, "facebook_page_page", "edges"), (write_musae, "twitch_fr", "target"),
])
def test_missing_arrays_are_named(writer, dataset: str, dropped: str, tmp_path: Path) -> None:
    path = writer(tmp_path, dataset, **{dropped: None})
    _refused(tmp_path, dataset, str(path), f"has no array {dropped}")


@pytest.mark.parametrize(("writer", "dataset", "override", "words"), [
    (write_musae, "facebook_page_page", {"target": LABELS - 1}, "negative"),
    (write_musae, "facebook_page_page", {"target": LABELS + 0.5}, "non-integer"),
    (write_musae, "facebook_page_page", {"target": LABELS[:-1]}, "6 entries for 7 nodes"),
    (write_musae, "facebook_page_page", {"target": np.zeros(N, dtype=int)}, "fewer than 2 classes"),
    (write_shchur, "amazon_photo", {"labels": np.full(N, np.nan)}, "non-integer"),
    (write_musae, "twitch_es", {"edges": np.array([[0, 1], [1, 7]])}, "outside 0..6"),
    (write_musae, "twitch_es", {"edges": np.array([[0, 1], [-1, 2]])}, "outside 0..6"),
    (write_musae, "twitch_es", {"edges": np.array([[0, 1, 2]])}, "E x 2"),
    (write_musae, "twitch_es", {"edges": np.array([[0.0, 1.0]])}, "integer"),
    (write_musae, "twitch_es", {"features": np.full((N, 2), np.nan)}, "NaN"),
    (write_musae, "twitch_es", {"features": np.ones(N)}, "2-D"),
    (write_shchur, "amazon_photo", {"adj_shape": np.array([N, N + 1])}, "square"),
    (write_shchur, "amazon_photo", {"adj_shape": np.array([5, 5])}, "CSR"),
    (write_shchur, "amazon_photo", {"adj_indices": np.array([0, 1, 2, 3, 4, 9, 5, 5])}, "adj_indices"),
    (write_shchur, "amazon_photo", {"attr_shape": np.array([N - 1, 3])}, "attr"),
])
def test_bad_content_is_refused_naming_the_file(writer, dataset: str, override: dict, words: str,
                                                tmp_path: Path) -> None:
    path = writer(tmp_path, dataset, **override)
    _refused(tmp_path, dataset, str(path), words)


@pytest.mark.parametrize(("which", "lines", "words"), [
    ("nodes", ["0\t1,0\t0", "1\t1,0,3\t1"], "line 3"),          # feature count changes
    ("nodes", ["0\t1,0\t0", "1\t1,x\t1"], "line 3"),            # a feature that is no number
    ("nodes", ["0\t1,0\t0", "1 1,0 1"], "line 3"),              # no tabs
    ("nodes", ["0\t1,0\t0", "1\t1,0\t-1"], "line 3"),           # a negative label
    ("nodes", ["0\t1,0\t0", "0\t1,0\t1"], "node ids are not 0..1"),
    ("nodes", [], "no line after the header"),
    ("edges", ["0\t1", "1\t2\t3"], "line 3"),
    ("edges", ["0\t1", "1\tb"], "line 3"),
    ("edges", ["0\t1", "1\t2"], "outside 0..1"),
])
def test_bad_text_lines_are_refused_naming_file_and_line(which: str, lines: list[str], words: str,
                                                          tmp_path: Path) -> None:
    node_lines = lines if which == "nodes" else ["0\t1,0\t0", "1\t0,1\t1"]
    edge_lines = lines if which == "edges" else ["0\t1"]
    nodes, edges = write_geom_gcn(tmp_path, "squirrel", node_lines, edge_lines)
    _refused(tmp_path, "squirrel", str(nodes if which == "nodes" else edges), words)


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = write_musae(tmp_path)
    text = _refused(tmp_path, "facebook_page_page", str(path), "data.max_file_mb=1e-06", "not read",
                    max_file_mb=1e-6)
    assert "MB" in text
    nodes, _ = write_geom_gcn(tmp_path)
    _refused(tmp_path, "chameleon", str(nodes), "not read", max_file_mb=1e-6)


def test_compressed_arrays_are_measured_unpacked(tmp_path: Path) -> None:
    """A small compressed .npz whose arrays unpack past the limit is refused before they are read."""
    path = tmp_path / "twitch_ru" / "RU.npz"
    path.parent.mkdir()
    np.savez_compressed(path, features=np.zeros((N, 40_000), dtype=np.float32), target=LABELS,
                        edges=np.array(EDGES))
    assert path.stat().st_size < 0.1 * 2**20
    _refused(tmp_path, "twitch_ru", str(path), "unpack to", max_file_mb=0.5)
