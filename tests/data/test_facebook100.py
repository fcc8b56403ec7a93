"""Facebook100 loader: GAP's preprocessing checked by hand on tiny .mat files, its refusals, and Caltech36."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.facebook100 import load_facebook100
from gnnrisk.errors import ConfigError, DataError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "facebook100.yaml"
SHARED = Path("/work/shared/data/facebook100")

# The tiny school: columns status, gender, major, minor, housing, year, high school (0 = missing).
INFO = np.array([
    [1, 2, 10, 0, 50, 2008, 7],   # 0
    [1, 1, 11, 0, 51, 2008, 7],   # 1
    [2, 1, 10, 12, 50, 2009, 8],  # 2
    [1, 2, 11, 0, 0, 2009, 8],    # 3: housing missing
    [1, 0, 10, 0, 51, 2009, 9],   # 4: gender missing; a self-loop in A
    [2, 1, 11, 0, 50, 0, 9],      # 5: year missing -> unlabelled, removed
    [1, 1, 10, 0, 50, 2008, 9],   # 6: tied only to 5 -> isolated once 5 goes, removed
    [1, 2, 11, 0, 51, 2010, 9],   # 7: the only 2010 -> a class below min_class_count=2, removed
    [2, 2, 10, 0, 52, 2008, 1],   # 8: no tie at all -> removed (its housing 52 stays a zero column)
])
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2), (5, 6), (5, 1), (7, 3), (4, 4)]
# Kept: nodes 0-4, y = year 2008 -> 0, 2009 -> 1. Features: status 1,2 | gender 1,2 | major 10,11 | minor 12 |
# housing 50,51,52 (categories from the whole file, as GAP's get_dummies).
X = [[1, 0, 0, 1, 1, 0, 0, 1, 0, 0],
     [1, 0, 1, 0, 0, 1, 0, 0, 1, 0],
     [0, 1, 1, 0, 1, 0, 1, 1, 0, 0],
     [1, 0, 0, 1, 0, 1, 0, 0, 0, 0],
     [1, 0, 0, 0, 1, 0, 0, 0, 1, 0]]
Y = [0, 0, 1, 1, 1]
KEPT_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)]


def _adjacency(n: int, edges: list[tuple[int, int]]) -> scipy.sparse.csc_matrix:
    """A symmetric 0/1 adjacency (CSC, as the Facebook100 files store it)."""
    src, dst = np.array(edges).T
    a = scipy.sparse.coo_matrix((np.ones(2 * len(edges)), (np.r_[src, dst], np.r_[dst, src])), shape=(n, n))
    return scipy.sparse.csc_matrix((a.tocsc() > 0).astype(np.float64))


def _write(folder: Path, school: str = "Tiny1", info: np.ndarray = INFO,
           edges: list[tuple[int, int]] = EDGES, **variables: object) -> Path:
    """Write `<folder>/<school>.mat` in the Facebook100 format (local_info stored as double) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    content = {"A": _adjacency(len(info), edges), "local_info": info.astype(np.float64), **variables}
    scipy.io.savemat(folder / f"{school}.mat", {k: v for k, v in content.items() if v is not None})
    return folder


def _cfg(root: Path, **extra: object) -> DictConfig:
    """The shipped data=facebook100 config over `root`, with overrides."""
    cfg = OmegaConf.load(CONFIG)
    cfg.root = str(root)
    cfg.school = "Tiny1"
    cfg.min_class_count = 2
    cfg.split = {"train": 0.4, "val": 0.2, "inductive_fraction": 0.5}
    return OmegaConf.merge(cfg, OmegaConf.create(extra))


def _random_school(folder: Path, n: int = 400, seed: int = 0) -> Path:
    """A larger random school (every node labelled and tied), for the split shares."""
    rng = np.random.default_rng(seed)
    info = np.c_[rng.integers(1, 3, (n, 5)), rng.integers(2005, 2008, n), rng.integers(0, 9, n)]
    ring = [(i, (i + 1) % n) for i in range(n)]
    chords = [tuple(p) for p in rng.integers(0, n, (3 * n, 2))]
    return _write(folder, "Random1", info=info, edges=ring + chords)


# --- the preprocessing, by hand ------------------------------------------------------------------------------

def test_tiny_school_by_hand(tmp_path: Path) -> None:
    """Unlabelled, then isolated nodes and the small class go; x is the one-hot of the other columns, 0 = zeros."""
    data = build_dataset(_cfg(_write(tmp_path)), seed=0)
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.long
    assert data.x.tolist() == X
    assert data.y.tolist() == Y
    expected = torch.tensor(KEPT_EDGES).T
    assert torch.equal(data.edge_index, coalesce(torch.cat([expected, expected.flip(0)], 1), num_nodes=5))
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert data.num_nodes == 5 and data.name == "Tiny1"
    assert [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")] == [2, 1, 2]
    assert not (data.ind_train_mask & data.ind_test_mask).any() and (data.ind_train_mask | data.ind_test_mask).all()


def test_min_class_count_one_keeps_the_small_class(tmp_path: Path) -> None:
    """With min_class_count 1 the single 2010 node stays, as class 2 (node 7 of the file)."""
    data = load_facebook100(_cfg(_write(tmp_path), min_class_count=1), seed=0)
    assert data.y.tolist() == Y + [2]
    assert data.x[5].tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 1, 0]
    assert data.edge_index[:, data.edge_index[0] == 5].tolist() == [[5], [3]]


def test_other_target_and_integer_codes(tmp_path: Path) -> None:
    """target=gender: node 4 (gender missing) goes, year becomes features; uint16 codes read as the doubles."""
    folder = tmp_path / "fb"
    folder.mkdir()
    scipy.io.savemat(folder / "Tiny1.mat", {"A": _adjacency(len(INFO), EDGES), "local_info": INFO.astype(np.uint16)})
    data = load_facebook100(_cfg(folder, target="gender", min_class_count=1), seed=0)
    # kept: file nodes 0, 1, 2, 3, 5, 6, 7 (4 lacks gender; 5 and 6 are labelled now; 8 has no tie)
    assert data.y.tolist() == [1, 0, 0, 1, 0, 0, 1]
    # status 2 | major 2 | minor 1 | housing 3 | year 2008, 2009, 2010 (node 5's year missing: zeros)
    assert data.x.shape == (7, 11)
    assert data.x[:, -3:].tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]]


def test_a_column_as_the_protected_group(tmp_path: Path) -> None:
    """group=gender: the kept nodes' gender codes name the groups (node 4's missing gender is its own group);
    the features and labels are those of the run without a group."""
    plain = build_dataset(_cfg(_write(tmp_path)), seed=0)
    data = build_dataset(_cfg(tmp_path, group="gender"), seed=0)
    assert data.group_names == ["gender_missing", "gender_1", "gender_2"]
    assert data.group.tolist() == [2, 1, 1, 2, 0]  # kept file nodes 0-4: genders 2, 1, 1, 2, 0
    assert torch.equal(data.x, plain.x) and torch.equal(data.y, plain.y) and getattr(plain, "group", None) is None


@pytest.mark.parametrize("group", ["year", "school", 3])
def test_group_must_be_another_column(tmp_path: Path, group: object) -> None:
    """The target itself, or a column that does not exist, is refused naming data.group."""
    with pytest.raises(ConfigError, match="data.group"):
        load_facebook100(_cfg(_write(tmp_path), group=group), seed=0)


def test_seeded_split_shares_and_determinism(tmp_path: Path) -> None:
    """GAP's 75/10/15 by default, disjoint and covering; the same seed gives the same masks, another seed others."""
    cfg = OmegaConf.load(CONFIG)
    cfg.root, cfg.school = str(_random_school(tmp_path)), "Random1"
    a, b, c = (build_dataset(cfg, seed=s) for s in (3, 3, 4))
    n = a.num_nodes
    assert n == 400
    masks = torch.stack([a.train_mask, a.val_mask, a.test_mask])
    assert masks.sum(1).tolist() == [round(0.75 * n), round(0.1 * n), n - round(0.75 * n) - round(0.1 * n)]
    assert (masks.sum(0) == 1).all()
    assert int(a.ind_train_mask.sum()) == n // 2 and not (a.ind_train_mask & a.ind_test_mask).any()
    for key in ("train_mask", "val_mask", "test_mask", "ind_train_mask", "ind_test_mask"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a.train_mask, c.train_mask) and not torch.equal(a.ind_train_mask, c.ind_train_mask)
    assert torch.equal(a.x, c.x) and torch.equal(a.edge_index, c.edge_index)  # only the split follows the seed


# --- refusals: one line each, config checked before any file is read -----------------------------------------

def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("school", ["../Tiny1", "fb/Tiny1", "/etc/passwd", "Tiny1.mat", "..", "", " Tiny1",
                                    "Tiny1\\x", 41, None])
def test_bad_school_names(tmp_path: Path, school: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_facebook100(_cfg(_write(tmp_path / "fb"), school=school), seed=0)
    assert err.value.field == "data.school" and "no folder" in _one_line(err)


def test_path_traversal_does_not_reach_outside(tmp_path: Path) -> None:
    """A valid file one folder up is not read through `../`."""
    _write(tmp_path, "Outside1")
    with pytest.raises(ConfigError, match="data.school"):
        load_facebook100(_cfg(_write(tmp_path / "fb"), school="../Outside1"), seed=0)


def test_missing_file_lists_the_schools_there(tmp_path: Path) -> None:
    folder = _write(tmp_path / "fb", "Amherst41")
    _write(folder, "Caltech36")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(DataError) as err:
        load_facebook100(_cfg(folder, school="UIllinois20"), seed=0)
    text = _one_line(err)
    assert str(folder) in text and "UIllinois20.mat" in text and "Amherst41, Caltech36" in text
    assert "notes" not in text
    with pytest.raises(DataError, match="does not exist"):
        load_facebook100(_cfg(tmp_path / "nowhere"), seed=0)


@pytest.mark.parametrize("content, message", [
    (b"school,year\nAmherst,2008\n", "not a MATLAB .mat file"),
    (b"", "not a MATLAB .mat file"),
    (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(124) + b"\x00\x02IM" + bytes(400),
     "v7.3"),
])
def test_files_that_are_not_mat_v5(tmp_path: Path, content: bytes, message: str) -> None:
    folder = tmp_path / "fb"
    folder.mkdir()
    (folder / "Tiny1.mat").write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        load_facebook100(_cfg(folder), seed=0)
    assert "Tiny1.mat" in _one_line(err)


def test_truncated_mat_file(tmp_path: Path) -> None:
    folder = _write(tmp_path / "fb")
    path = folder / "Tiny1.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="cannot read it as a MATLAB v5 file") as err:
        load_facebook100(_cfg(folder), seed=0)
    _one_line(err)


@pytest.mark.parametrize("variables, message", [
    ({"local_info": None}, "no variable local_info"),
    ({"A": None}, "no variable A"),
    ({"A": scipy.sparse.csc_matrix(np.ones((9, 8)))}, "9 x 8"),
    ({"A": np.array(["x"] * 9)}, "expected a numeric n x n"),
    ({"local_info": INFO[:8].astype(np.float64)}, "local_info is 8 x 7 but A is 9 x 9"),
    ({"local_info": INFO[:, :6].astype(np.float64)}, "local_info is 9 x 6"),
    ({"local_info": INFO - 3}, "negative"),
    ({"local_info": INFO + 0.5}, "non-integer"),
])
def test_malformed_variables(tmp_path: Path, variables: dict, message: str) -> None:
    folder = tmp_path / "fb"
    _write(folder, **variables)
    with pytest.raises(DataError, match=message) as err:
        load_facebook100(_cfg(folder), seed=0)
    _one_line(err)


@pytest.mark.parametrize("field, value, refused", [
    ("target", "high_school", "data.target"), ("target", "Year", "data.target"),
    ("min_class_count", 0, "data.min_class_count"), ("min_class_count", 1.5, "data.min_class_count"),
    ("min_class_count", "100", "data.min_class_count"), ("root", "", "data.root"),
    ("split.train", 0.95, "data.split.train+data.split.val"), ("split.val", -0.1, "data.split.val"),
    ("split.inductive_fraction", 1.0, "data.split.inductive_fraction"),
])
def test_bad_settings_refused_before_reading(tmp_path: Path, field: str, value: object, refused: str) -> None:
    """The folder does not exist: the refusal is the setting's, not a missing file's."""
    cfg = _cfg(tmp_path / "nowhere")
    OmegaConf.update(cfg, field, value)
    with pytest.raises(ConfigError) as err:
        load_facebook100(cfg, seed=0)
    assert err.value.field == refused
    _one_line(err)


def test_min_class_count_leaving_one_class(tmp_path: Path) -> None:
    """Class sizes after preprocessing are 3 (2009), 2 (2008): 3 keeps one class; the error says 2 would do."""
    with pytest.raises(ConfigError) as err:
        load_facebook100(_cfg(_write(tmp_path), min_class_count=3), seed=0)
    assert err.value.field == "data.min_class_count"
    assert "leaves 1 class(es)" in _one_line(err) and "set at most 2" in str(err.value)


def test_single_class_target_and_unlabelled_file(tmp_path: Path) -> None:
    single = INFO.copy()
    single[:, 1] = np.where(single[:, 1] > 0, 2, 0)
    with pytest.raises(ConfigError, match="single class") as err:
        load_facebook100(_cfg(_write(tmp_path / "a", info=single), target="gender"), seed=0)
    assert err.value.field == "data.target"
    empty = INFO.copy()
    empty[:, 5] = 0
    with pytest.raises(DataError, match="no node has a value for target 'year'"):
        load_facebook100(_cfg(_write(tmp_path / "b", info=empty)), seed=0)


def test_unknown_key_refused(tmp_path: Path) -> None:
    cfg = _cfg(_write(tmp_path))
    cfg.min_count = 5
    with pytest.raises(ConfigError, match="did you mean data.min_class_count"):
        build_dataset(cfg, seed=0)


# --- the real file -------------------------------------------------------------------------------------------

def test_caltech36(tmp_path: Path) -> None:
    """Caltech36 (769 nodes, 16,656 ties in the file), target year, min_class_count 100: measured 562 nodes,
    13,299 ties, 79 features, 4 classes (2005-2008: 105, 152, 132, 173 nodes)."""
    if not (SHARED / "Caltech36.mat").is_file():
        pytest.skip(f"{SHARED / 'Caltech36.mat'} is not available")
    cfg = OmegaConf.load(CONFIG)
    cfg.root, cfg.school = str(SHARED), "Caltech36"
    data = build_dataset(cfg, seed=0)
    assert data.num_nodes == 562 and data.edge_index.size(1) == 2 * 13299
    assert data.x.shape == (562, 79) and torch.bincount(data.y).tolist() == [105, 152, 132, 173]
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert ((data.x[:, :4].sum(1)) == 1).all()  # status: complete in Caltech36, one-hot in 4 categories
    assert [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")] == [422, 56, 84]


def test_school_name_with_a_space(tmp_path: Path) -> None:
    """Facebook100 has `Johns Hopkins55.mat`: a space inside the name is a plain name."""
    data = load_facebook100(_cfg(_write(tmp_path, "Johns Hopkins55"), school="Johns Hopkins55"), seed=0)
    assert data.num_nodes == 5 and data.name == "Johns Hopkins55"


def test_a_run_on_caltech36_reports_accuracy_per_gender(tmp_path: Path) -> None:
    """gnnrisk.run on Caltech36 with data.group=gender (a 4-class task): test accuracy per group and the gap."""
    if not (SHARED / "Caltech36.mat").is_file():
        pytest.skip(f"{SHARED / 'Caltech36.mat'} is not available")
    import gnnrisk

    result = gnnrisk.run(["data=facebook100", "data.school=Caltech36", f"data.root={SHARED}", "data.group=gender",
                          "model=mlp", "train.epochs=5"], run_dir=tmp_path / "run")
    names = [k for k in result.metrics if k.startswith("acc_gender_")]
    assert sorted(names) == ["acc_gender_1", "acc_gender_2", "acc_gender_missing"]
    values = [result.metrics[k] for k in names if result.metrics[k] is not None]
    assert result.metrics["acc_gap"] == pytest.approx(max(values) - min(values))
