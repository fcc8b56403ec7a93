"""Planetoid loader: offline loading of CiteSeer from a read-only folder, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.planetoid import load_planetoid, raw_file_names
from gnnrisk.errors import ConfigError, DataError

SHARED = Path("/work/shared/data/planetoid")


def _cfg(data_root: Path, cache: Path, **extra: object) -> DictConfig:
    """A planetoid data config over `data_root`, caching processed files under `cache`."""
    return OmegaConf.create({"name": "planetoid", "dataset": "CiteSeer", "root": str(data_root),
                             "cache_dir": str(cache), "normalize_features": True, **extra})


@pytest.fixture(scope="module")
def citeseer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the CiteSeer tests, so PyG processes the raw files once."""
    if not (SHARED / "CiteSeer" / "raw").is_dir():
        pytest.skip(f"{SHARED / 'CiteSeer' / 'raw'} is not available")
    return tmp_path_factory.mktemp("planetoid_cache")


def test_citeseer_public_split_and_contract(citeseer_cache: Path) -> None:
    """CiteSeer loads from the read-only folder with its public split and the gnnrisk contract."""
    data = build_dataset(_cfg(SHARED, citeseer_cache), seed=0)
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


def test_citeseer_read_only_root_is_untouched_and_cached(citeseer_cache: Path) -> None:
    """Processed files go to the cache, never next to the read-only raw files."""
    load_planetoid(_cfg(SHARED, citeseer_cache), seed=0)
    assert not (SHARED / "CiteSeer" / "processed").exists()
    assert list(citeseer_cache.glob("*/CiteSeer/processed/data.pt"))


def test_citeseer_seeded_inductive_split_and_raw_features(citeseer_cache: Path) -> None:
    """The inductive partition follows the seed; normalize_features=false keeps binary features."""
    a = load_planetoid(_cfg(SHARED, citeseer_cache, normalize_features=False), seed=1)
    b = load_planetoid(_cfg(SHARED, citeseer_cache, normalize_features=False), seed=1)
    c = load_planetoid(_cfg(SHARED, citeseer_cache, normalize_features=False), seed=2)
    assert torch.equal(a.ind_train_mask, b.ind_train_mask)
    assert not torch.equal(a.ind_train_mask, c.ind_train_mask)
    assert set(a.x.unique().tolist()) <= {0.0, 1.0}


def test_writable_root_processes_in_place(tmp_path: Path) -> None:
    """With a writable copy of the raw files, PyG's processed/ folder lands beside raw/."""
    src = SHARED / "CiteSeer" / "raw"
    if not src.is_dir():
        pytest.skip(f"{src} is not available")
    raw = tmp_path / "CiteSeer" / "raw"
    raw.mkdir(parents=True)
    for name in raw_file_names("CiteSeer"):
        (raw / name).write_bytes((src / name).read_bytes())
    data = load_planetoid(_cfg(tmp_path, tmp_path / "unused_cache"), seed=0)
    assert data.num_nodes == 3327
    assert (tmp_path / "CiteSeer" / "processed").is_dir()
    assert not (tmp_path / "unused_cache").exists()


def test_missing_folder_names_folder_and_files(tmp_path: Path) -> None:
    """Absent raw files give a DataError naming the folder, the 8 files and the offline rule."""
    with pytest.raises(DataError) as err:
        load_planetoid(_cfg(tmp_path, tmp_path / "cache", dataset="Cora"), seed=0)
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
        load_planetoid(_cfg(tmp_path, tmp_path / "cache", dataset="PubMed"), seed=0)


def test_corrupt_raw_files_give_data_error(tmp_path: Path) -> None:
    """Unreadable raw files become a DataError naming the folder, not a pickle traceback."""
    raw = tmp_path / "Cora" / "raw"
    raw.mkdir(parents=True)
    for name in raw_file_names("Cora"):
        (raw / name).write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read"):
        load_planetoid(_cfg(tmp_path, tmp_path / "cache", dataset="Cora"), seed=0)


@pytest.mark.parametrize("field,value", [("dataset", "cora_full"), ("root", None),
                                         ("normalize_features", "yes")])
def test_bad_config_fields(tmp_path: Path, field: str, value: object) -> None:
    """Invalid config values raise a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"data.{field}"):
        load_planetoid(_cfg(tmp_path, tmp_path / "cache", **{field: value}), seed=0)
