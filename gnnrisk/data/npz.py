"""Reading the benchmark graphs' .npz archives without pickles, and checking their arrays (one DataError line each)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from gnnrisk.errors import DataError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an .npz); the second: one without members


def read_npz(path: Path, keys: tuple[str, ...], limit: int, layout: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of an .npz archive, read without pickle; one DataError line naming the file otherwise."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic not in ZIP_MAGIC:
        raise DataError(f"{path}: not an .npz archive (a zip of .npy arrays); expected {layout}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DataError(f"{path}: has no array {', '.join(missing)}; expected {layout}")
            unpacked = sum(archive.zip.getinfo(f"{k}.npy").file_size for k in keys)
            if unpacked > limit:
                raise DataError(f"{path}: its arrays unpack to {unpacked / 2**20:.3g} MB, above data.max_file_mb="
                                f"{limit / 2**20:g}; not read")
            out = {}
            for key in keys:  # a handful of named arrays
                try:
                    out[key] = archive[key]
                except ValueError as err:
                    if "pickle" in str(err).lower() or "object" in str(err).lower():
                        raise DataError(f"{path}: array {key!r} holds Python objects (pickled data); refused: "
                                        "unpickling it could run code stored in the file; expected numeric arrays") from err
                    raise
            return out
    except DataError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, MemoryError) as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise DataError(f"{path}: cannot read it as an .npz archive ({type(err).__name__}: {detail}); "
                        f"expected {layout}") from err


def numeric_array(path: Path, name: str, array: np.ndarray, ndim: int, kinds: str = "biuf") -> np.ndarray:
    """`array` if it is `ndim`-D of a numeric kind in `kinds`; else a DataError naming the file and the array."""
    if array.ndim != ndim or array.dtype.kind not in kinds:
        what = "integer" if kinds == "iu" else "numeric"
        raise DataError(f"{path}: array {name!r} is {array.dtype} of shape {array.shape}; expected a "
                        f"{ndim}-D {what} array")
    return array


def labels_of(path: Path, y: np.ndarray, num_nodes: int, name: str = "labels") -> np.ndarray:
    """Class indices 0..C-1 (int64), one per node; a DataError naming the file otherwise."""
    numeric_array(path, name, y, 1)
    if y.shape[0] != num_nodes:
        raise DataError(f"{path}: {name} has {y.shape[0]} entries for {num_nodes} nodes; expected one per node")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
        raise DataError(f"{path}: {name} holds non-integer or NaN values; expected class indices 0..C-1")
    if num_nodes and y.min() < 0:
        raise DataError(f"{path}: {name} holds negative values (smallest {y.min():g}); expected class indices 0..C-1")
    y = y.astype(np.int64)
    if np.unique(y).size < 2:
        raise DataError(f"{path}: {name} holds fewer than 2 classes; node classification needs 2")
    return y
