"""gnnrisk: graph-based risk analysis with privacy, explainability and fairness controls."""

from omegaconf import OmegaConf

from gnnrisk.results import run_dirname

__version__ = "0.1.0"

# `hydra.sweep.subdir` names run folders through this (configs/config.yaml); registered on import so
# that launcher workers, which import gnnrisk to run a job, resolve it too.
OmegaConf.register_new_resolver("gnnrisk_dirname", run_dirname, replace=True)
