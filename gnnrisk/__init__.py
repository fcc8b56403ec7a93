"""gnnrisk: graph-based risk analysis with privacy, explainability and fairness controls.

From Python: `gnnrisk.run(overrides, run_dir)` (one experiment, a RunResult), `gnnrisk.sweep(grid, sweep_dir)`
(a grid, its runs as a DataFrame) and `gnnrisk.report.load(sweep_dir)`; see docs/api.md. They are imported
on first use, so that `import gnnrisk` (and `gnnrisk-run --help`) stays light.
"""

from typing import Any

from omegaconf import OmegaConf

from gnnrisk.results import run_dirname

__version__ = "0.1.0"

# `hydra.sweep.subdir` names run folders through this (configs/config.yaml); registered on import so
# that launcher workers, which import gnnrisk to run a job, resolve it too.
OmegaConf.register_new_resolver("gnnrisk_dirname", run_dirname, replace=True)

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
