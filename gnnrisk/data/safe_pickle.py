"""Unpickle data files with an allow-list of globals, so a crafted file cannot run code."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse

from gnnrisk.errors import DataError

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]

# The globals numpy arrays, scipy CSR matrices and a defaultdict(list) adjacency pickle to, under
# each module name the writing numpy/scipy/Python version used (Planetoid's are Python 2 pickles).
ARRAY_GLOBALS: Mapping[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _reconstruct
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(module, "csr_matrix"): scipy.sparse.csr_matrix
       for module in ("scipy.sparse", "scipy.sparse.csr", "scipy.sparse._csr")},
    ("collections", "defaultdict"): collections.defaultdict,
    # Only as a defaultdict's default_factory; the unpickler builds lists without any global.
    **{(module, "list"): list for module in ("builtins", "__builtin__")},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in `allowed`, refusing any other by name."""

    def __init__(self, file: Any, path: Path, allowed: Mapping[tuple[str, str], Any], **kwargs: Any):
        super().__init__(file, **kwargs)
        self.path, self.allowed = path, allowed

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global; never import anything a file names."""
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DataError(f"{self.path}: refused to unpickle the global {module}.{name} "
                            "(only numpy arrays and scipy.sparse matrices are allowed)") from None


def load_restricted(path: Path, allowed: Mapping[tuple[str, str], Any] = ARRAY_GLOBALS,
                    encoding: str = "latin1") -> Any:
    """Unpickle `path` allowing only `allowed` globals; any failure is a DataError naming the file."""
    try:
        with open(path, "rb") as handle:
            return RestrictedUnpickler(handle, path, allowed, encoding=encoding).load()
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
        raise DataError(f"{path}: cannot read this pickle ({type(err).__name__}: {err})") from err
