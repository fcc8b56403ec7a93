"""gnnrisk: graph-based risk analysis with privacy, explainability and fairness controls.

From Python: `gnnrisk.run(overrides, run_dir)` (one experiment, a RunResult), `gnnrisk.sweep(grid, sweep_dir)`
(a grid, its runs as a DataFrame) and `gnnrisk.report.load(sweep_dir)`; see docs/api.md. They are imported
on first use, so that `import gnnrisk` (and `gnnrisk-run --help`) stays light.
"""

from importlib import metadata
from typing import Any

from omegaconf import OmegaConf

from gnnrisk.results import run_dirname

# One source: the installed package's metadata (pyproject.toml's version at install time; an editable
# install picks up a new version when reinstalled, as `make` does when pyproject.toml changes).
try:
    __version__ = metadata.version("gnnrisk")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

# `hydra.sweep.subdir` names run folders through this (configs/config.yaml); registered on import so
# that launcher workers, which import gnnrisk to run a job, resolve it too.
OmegaConf.register_new_resolver("gnnrisk_dirname", run_dirname, replace=True)


def capped_default(default: Any, size: Any, share: Any) -> Any:
    """`default`, or `share` of `size` when that is smaller: a default that shrinks with a small graph
    (configs/data/synthetic.yaml: mean_degree and num_communities at data.num_nodes=10); a size that is
    not a number leaves `default`, for the size's own check to refuse."""
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not size == size:
        return default
    cap = size * share
    return default if default <= cap else (int(cap) if isinstance(default, int) else cap)


OmegaConf.register_new_resolver("gnnrisk_capped", capped_default, replace=True)

_API = ("run", "sweep", "RunResult")  # in gnnrisk.api (Hydra's compose API, the pipeline on first run)
__all__ = [*_API, "report", "__version__"]


def __getattr__(name: str) -> Any:
    """`gnnrisk.run`, `gnnrisk.sweep`, `gnnrisk.RunResult` and `gnnrisk.report`, imported when first used."""
    import importlib

    if name in _API:
        return getattr(importlib.import_module("gnnrisk.api"), name)
    if name == "report":
        return importlib.import_module("gnnrisk.report")
    raise AttributeError(f"module 'gnnrisk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
