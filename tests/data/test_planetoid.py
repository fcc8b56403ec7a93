"""Planetoid loader: offline loading of CiteSeer from a read-only folder, no code run from data files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.planetoid import load_planetoid, raw_file_names, read_planetoid_raw
from gnnrisk.errors import ConfigError, DataError

SHARED = Path("/work/shared/data/planetoid")


def _cfg(data_root: Path, **extra: object) -> DictConfig:
    """A planetoid data config over `data_root`."""
    return OmegaConf.create({"name": "planetoid", "dataset": "CiteSeer", "root": str(data_root),
                             "normalize_features": True, **extra})


@pytest.fixture(scope="module")
def citeseer_raw() -> Path:
    """The shared read-only CiteSeer raw folder, or skip when it is absent."""
    if not (SHARED / "CiteSeer" / "raw").is_dir():
        pytest.skip(f"{SHARED / 'CiteSeer' / 'raw'} is not available")
    return SHARED / "CiteSeer" / "raw"


def _copy_raw(citeseer_raw: Path, root: Path) -> Path:
    """Copy the CiteSeer raw files to `root/CiteSeer/raw` and return that folder."""
    raw = root / "CiteSeer" / "raw"
    raw.mkdir(parents=True)
    for name in raw_file_names("CiteSeer"):
        (raw / name).write_bytes((citeseer_raw / name).read_bytes())
    return raw


class _Payload:
    """Pickles to a call of `func(*args)`, as a crafted data file would."""

    def __init__(self, func: Callable[..., Any], *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[object, ...]]:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    """Payloads that would create `marker` if unpickled."""
    return {"system": _Payload(os.system, f"touch {marker}"),
            "exec": _Payload(exec, f"open({str(marker)!r}, 'w').close()")}


def test_citeseer_public_split_and_contract(citeseer_raw: Path) -> None:
    """CiteSeer loads from the read-only folder with its public split and the gnnrisk contract."""
    data = build_dataset(_cfg(SHARED), seed=0)
    assert data.num_nodes == 3327
    assert int(data.y.max()) + 1 == 6 and data.y.dtype == torch.long
    sizes = [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")]
    assert sizes == [120, 500, 1000]
    assert data.x.dtype == torch.float32 and data.x.shape == (3327, 3703)
    assert data.edge_index.dtype == torch.long
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert torch.equal(coalesce(data.edge_index, num_nodes=data.num_nodes), data.edge_index)
    assert not (data.ind_train_mask & data.ind_test_mask).any()
    assert (data.ind_train_mask | data.ind_test_mask).all()
    rows = data.x.sum(1)
    assert torch.allclose(rows[rows > 0], torch.ones_like(rows[rows > 0]))  # row-normalised
    assert data.name == "CiteSeer"


def test_citeseer_seeded_inductive_split_and_raw_features(citeseer_raw: Path) -> None:
    """The inductive partition follows the seed; normalize_features=false keeps binary features."""
    a = load_planetoid(_cfg(SHARED, normalize_features=False), seed=1)
    b = load_planetoid(_cfg(SHARED, normalize_features=False), seed=1)
    c = load_planetoid(_cfg(SHARED, normalize_features=False), seed=2)
    assert torch.equal(a.ind_train_mask, b.ind_train_mask)
    assert not torch.equal(a.ind_train_mask, c.ind_train_mask)
    assert set(a.x.unique().tolist()) <= {0.0, 1.0}


def test_raw_read_equals_pyg_planetoid(citeseer_raw: Path, tmp_path: Path) -> None:
    """The in-memory read gives exactly the tensors of PyG's own loader (run on a copy)."""
    from torch_geometric.datasets import Planetoid

    _copy_raw(citeseer_raw, tmp_path)
    reference = Planetoid(root=str(tmp_path), name="CiteSeer", split="public")[0]
    ours = read_planetoid_raw(citeseer_raw, "CiteSeer")
    assert set(ours.keys()) == set(reference.keys())
    for key in reference.keys():
        assert ours[key].dtype == reference[key].dtype, key
        assert torch.equal(ours[key], reference[key]), key


def test_nothing_is_written(citeseer_raw: Path, tmp_path: Path) -> None:
    """Loading writes no processed files, neither beside a writable copy nor beside the shared one."""
    raw = _copy_raw(citeseer_raw, tmp_path)
    data = load_planetoid(_cfg(tmp_path), seed=0)
    assert data.num_nodes == 3327
    assert sorted(p.name for p in (tmp_path / "CiteSeer").iterdir()) == ["raw"]
    assert sorted(p.name for p in raw.iterdir()) == sorted(raw_file_names("CiteSeer"))
    assert not (SHARED / "CiteSeer" / "processed").exists()


@pytest.mark.parametrize("suffix", ["x", "ally", "graph"])
@pytest.mark.parametrize("refused", ["system", "exec"])
def test_crafted_raw_pickle_is_refused(citeseer_raw: Path, tmp_path: Path, suffix: str,
                                       refused: str) -> None:
    """A raw file whose pickle calls a function is refused by name, and the call never happens."""
    raw = _copy_raw(citeseer_raw, tmp_path / "data")
    marker = tmp_path / "MARKER"
    crafted = raw / f"ind.citeseer.{suffix}"
    crafted.write_bytes(pickle.dumps(_payloads(marker)[refused], protocol=2))
    with pytest.raises(DataError) as err:
        load_planetoid(_cfg(tmp_path / "data"), seed=0)
    assert str(crafted) in str(err.value) and f".{refused} " in str(err.value)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_crafted_processed_file_is_never_loaded(citeseer_raw: Path, tmp_path: Path) -> None:
    """A processed/data.pt planted beside the raw files is ignored: nothing runs, raw files are read."""
    _copy_raw(citeseer_raw, tmp_path)
    marker = tmp_path / "MARKER"
    processed = tmp_path / "CiteSeer" / "processed"
    processed.mkdir()
    payload = _payloads(marker)["system"]
    for name in ("data.pt", "pre_transform.pt", "pre_filter.pt"):
        torch.save(payload, processed / name)
    data = load_planetoid(_cfg(tmp_path, normalize_features=False), seed=0)
    reference = load_planetoid(_cfg(SHARED, normalize_features=False), seed=0)
    assert not marker.exists()
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[key], reference[key]), key


def test_cache_dir_is_refused(tmp_path: Path) -> None:
    """The removed data.cache_dir setting gives a ConfigError saying it is no longer used."""
    with pytest.raises(ConfigError, match="data.cache_dir.*no longer used"):
        load_planetoid(_cfg(tmp_path, cache_dir=str(tmp_path)), seed=0)


def test_missing_folder_names_folder_and_files(tmp_path: Path) -> None:
    """Absent raw files give a DataError naming the folder, the 8 files and the offline rule."""
    with pytest.raises(DataError) as err:
        load_planetoid(_cfg(tmp_path, dataset="Cora"), seed=0)
    msg = str(err.value)
    assert str(tmp_path / "Cora" / "raw") in msg
    assert all(name in msg for name in raw_file_names("Cora"))
    assert "download" in msg
    assert not (tmp_path / "Cora").exists()  # nothing created, no download attempted


def test_partial_raw_files_listed_as_missing(tmp_path: Path) -> None:
    """When some raw files exist, the message says which ones are missing."""
    raw = tmp_path / "PubMed" / "raw"
    raw.mkdir(parents=True)
    (raw / "ind.pubmed.x").write_bytes(b"")
    with pytest.raises(DataError, match=r"missing: ind\.pubmed\.tx"):
        load_planetoid(_cfg(tmp_path, dataset="PubMed"), seed=0)


def test_corrupt_raw_files_give_data_error(tmp_path: Path) -> None:
    """Unreadable raw files become a DataError naming the folder, not a pickle traceback."""
    raw = tmp_path / "Cora" / "raw"
    raw.mkdir(parents=True)
    for name in raw_file_names("Cora"):
        (raw / name).write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read"):
        load_planetoid(_cfg(tmp_path, dataset="Cora"), seed=0)


def test_remove_isolated_drops_tieless_nodes_and_keeps_masks_aligned(citeseer_raw: Path) -> None:
    """data.remove_isolated=true (GAP's and DPDGC's loaders): CiteSeer loses its 48 isolated nodes, nothing else."""
    full = load_planetoid(_cfg(SHARED, normalize_features=False), seed=0)
    kept = load_planetoid(_cfg(SHARED, normalize_features=False, remove_isolated=True), seed=0)
    has_tie = torch.zeros(full.num_nodes, dtype=torch.bool)
    has_tie[full.edge_index.flatten()] = True
    assert full.num_nodes - kept.num_nodes == int((~has_tie).sum()) == 48
    assert kept.num_edges == full.num_edges and int(kept.edge_index.max()) == kept.num_nodes - 1
    assert torch.equal(kept.x, full.x[has_tie]) and torch.equal(kept.y, full.y[has_tie])
    assert torch.equal(kept.test_mask, full.test_mask[has_tie])  # the public split follows the kept nodes
    assert set(full.x.unique().tolist()) == {0.0, 1.0}  # raw binary features by default (PyG, GAP, DPDGC)


@pytest.mark.parametrize("field,value", [("dataset", "cora_full"), ("root", None),
                                         ("normalize_features", "yes"), ("remove_isolated", "yes")])
def test_bad_config_fields(tmp_path: Path, field: str, value: object) -> None:
    """Invalid config values raise a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"data.{field}"):
        load_planetoid(_cfg(tmp_path, **{field: value}), seed=0)


def test_random_split_by_shares_seeded(citeseer_raw: Path) -> None:
    """data.split.kind=random: disjoint seeded masks of the configured shares of all nodes; public by default."""
    split = {"kind": "random", "train": 0.6, "val": 0.2, "inductive_fraction": 0.5}
    a, b = (load_planetoid(_cfg(SHARED, split=split), seed=3) for _ in range(2))
    other = load_planetoid(_cfg(SHARED, split=split), seed=4)
    n = a.num_nodes
    assert int(a.train_mask.sum()) == round(0.6 * n) and int(a.val_mask.sum()) == round(0.2 * n)
    assert not (a.train_mask & a.val_mask).any() and bool((a.train_mask | a.val_mask | a.test_mask).all())
    assert torch.equal(a.train_mask, b.train_mask) and not torch.equal(a.train_mask, other.train_mask)
    assert int(load_planetoid(_cfg(SHARED), seed=3).train_mask.sum()) == 120  # public: 20 per class


@pytest.mark.parametrize("split,field", [({"kind": "stratified"}, "data.split.kind"),
                                         ({"kind": "random", "train": 0.9, "val": 0.2}, "data.split.train+")])
def test_bad_random_split_refused(tmp_path: Path, split: dict, field: str) -> None:
    """A bad split kind or shares: one-line ConfigError, before the files are looked for."""
    with pytest.raises(ConfigError, match=field.replace("+", r"\+")):
        load_planetoid(_cfg(tmp_path, split=split), seed=0)
