"""gnnrisk's Optuna sweeper as a Hydra plugin (`hydra/sweeper=optuna`); the logic is in gnnrisk.tuning.

Written for current Optuna (>= 4) because hydra-optuna-sweeper 1.3.0 pins optuna < 3 and does not
resume (docs/tuning.md has what was tried). Its config fields are kept: sampler (an Optuna sampler
`_target_` with its seed), direction, study_name, n_trials, n_jobs, params (Hydra sweep syntax); and
gnnrisk's own private_selection (a random number of trials, each with its own noise_seed, and at node
level a noisy validation score; docs/tuning.md).
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from gnnrisk.errors import ConfigError


class OptunaSweeper(Sweeper):
    """Ask Optuna for trials, run each as a job of the configured launcher, tell it the run's objective."""

    def __init__(self, sampler: Any = None, direction: str = "maximize", study_name: str = "gnnrisk",
                 n_trials: int = 10, n_jobs: int = 1, params: dict[str, Any] | None = None,
                 private_selection: Any = None) -> None:
        """Keep the fields as given: they are checked in `sweep`, so that a refusal is one line."""
        self.settings = {"sampler": sampler, "direction": direction, "study_name": study_name,
                         "n_trials": n_trials, "n_jobs": n_jobs, "params": dict(params) if params else None,
                         "private_selection": private_selection}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep the config and build the configured launcher."""
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def _compose(self, overrides: list[str]) -> DictConfig:
        """The config of one job with these overrides, as the launcher composes it."""
        assert self.hydra_context is not None and self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(self.config, overrides)

    def sweep(self, arguments: list[str]) -> Any:
        """Check everything, then run the study; a bad input is one line and exit code 2, nothing launched."""
        from gnnrisk.tuning import plan_study, run_study

        assert self.config is not None
        try:
            plan = plan_study(self.config, arguments, self.settings, self._compose)
            return run_study(plan, lambda jobs, first: self.launcher.launch(jobs, initial_job_idx=first),
                             self._compose)
        except ConfigError as err:  # raised before any trial is launched (plan, or a study that does not fit)
            print(f"gnnrisk: error: {err}", file=sys.stderr)
            sys.exit(2)
