"""Planetoid citation benchmarks (Cora, CiteSeer, PubMed) from local raw files, never downloaded."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Iterator

import torch
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid
from torch_geometric.transforms import NormalizeFeatures
from torch_geometric.utils import remove_self_loops, to_undirected

from gnnrisk.data.splits import inductive_masks
from gnnrisk.errors import ConfigError, DataError, check_choice, check_number

log = logging.getLogger(__name__)

DATASETS = ("Cora", "CiteSeer", "PubMed")
RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def raw_file_names(dataset: str) -> list[str]:
    """The 8 files PyG's Planetoid reads from `<root>/<dataset>/raw/`."""
    return [f"ind.{dataset.lower()}.{suffix}" for suffix in RAW_SUFFIXES]


def load_planetoid(cfg: DictConfig, seed: int) -> Data:
    """Load a Planetoid dataset with its public split, plus a seeded inductive node partition."""
    dataset = check_choice("data.dataset", cfg.get("dataset", "CiteSeer"), DATASETS)
    root = cfg.get("root")
    if not isinstance(root, str) or not root:
        raise ConfigError("data.root", root, "expected the folder that contains "
                          f"{dataset}/raw/ with the Planetoid files")
    normalize = cfg.get("normalize_features", True)
    if not isinstance(normalize, bool):
        raise ConfigError("data.normalize_features", normalize, "expected true or false")
    split_cfg = cfg.get("split") or {}
    fraction = check_number("data.split.inductive_fraction", split_cfg.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)

    raw_dir = Path(root).expanduser() / dataset / "raw"
    names = raw_file_names(dataset)
    missing = [n for n in names if not (raw_dir / n).is_file()]
    if missing:
        raise DataError(
            f"Planetoid {dataset}: folder {raw_dir} must hold the files {', '.join(names)} "
            f"(missing: {', '.join(missing)}); nothing can be downloaded, so copy them there "
            f"or set data.root to the folder that contains {dataset}/raw/")

    load_root = _processing_root(raw_dir, names, cfg.get("cache_dir"))
    data = _read(load_root, dataset)
    if normalize:
        data = NormalizeFeatures()(data)

    # PyG's edge_index is symmetric but not sorted; the contract wants it coalesced, loop-free.
    edge_index, _ = remove_self_loops(data.edge_index)
    out = Data(x=data.x.float(), edge_index=to_undirected(edge_index, num_nodes=data.num_nodes),
               y=data.y.long(), train_mask=data.train_mask.bool(), val_mask=data.val_mask.bool(),
               test_mask=data.test_mask.bool())
    generator = torch.Generator().manual_seed(seed)
    out.ind_train_mask, out.ind_test_mask = inductive_masks(out.num_nodes, generator, fraction)
    out.name = dataset
    return out


def _read(load_root: Path, dataset: str) -> Data:
    """Build (or reuse) PyG's processed file under `load_root` and return the graph."""
    with _locked(load_root / dataset / ".gnnrisk.lock"):
        try:
            return Planetoid(root=str(load_root), name=dataset, split="public")[0]
        except Exception as err:  # noqa: BLE001 - any failure here means unreadable files
            raise DataError(
                f"Planetoid {dataset}: cannot read the files under {load_root / dataset} "
                f"({type(err).__name__}: {err}); check the raw files, or delete "
                f"{load_root / dataset / 'processed'} to rebuild it") from err


def _processing_root(raw_dir: Path, names: list[str], cache_dir: str | None) -> Path:
    """Return the root PyG should use: the data root if writable, else a cache copy of the raw files."""
    dataset_dir = raw_dir.parent
    if _writable(dataset_dir):
        return dataset_dir.parent
    base = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    # One cache folder per source folder, so two roots holding different files never collide.
    key = hashlib.sha1(str(raw_dir.resolve()).encode()).hexdigest()[:12]
    cache_root = base / key
    cache_raw = cache_root / dataset_dir.name / "raw"
    cache_raw.mkdir(parents=True, exist_ok=True)
    with _locked(cache_raw.parent / ".gnnrisk.lock"):
        changed = False
        for name in names:
            src, dst = raw_dir / name, cache_raw / name
            s = src.stat()
            if dst.is_file() and dst.stat().st_size == s.st_size and dst.stat().st_mtime == s.st_mtime:
                continue
            tmp = dst.with_suffix(dst.suffix + ".tmp")
            shutil.copy2(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dst)
            changed = True
        if changed:
            # Raw files changed: the processed tensor built from the old ones is stale.
            shutil.rmtree(cache_raw.parent / "processed", ignore_errors=True)
            log.info("copied read-only Planetoid files from %s to %s", raw_dir, cache_raw)
    return cache_root


def default_cache_dir() -> Path:
    """Where processed Planetoid files go when the data root is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gnnrisk" / "planetoid"


def _writable(folder: Path) -> bool:
    """True if `folder` may be written: permitted and not marked read-only (root ignores mode bits)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(stat.S_IMODE(mode) & 0o222)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock so parallel runs (multirun workers) do not process at once."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
