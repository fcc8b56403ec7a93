"""The study plan: everything checked before the first trial (objective, sweeper fields, search space), and the sampler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from gnnrisk.errors import ConfigError
from gnnrisk.tuning.objective import check_direction, checked_objective
from gnnrisk.tuning.space import SearchSpace, override_value, parse_search_space, representative_values

if TYPE_CHECKING:  # optuna is the `tune` extra: imported by the sweeper only, never by a plain run
    import optuna


@dataclass
class StudyPlan:
    """A study that passed every check: what to search, how, and where the study lives."""

    sweep_dir: Path
    objective: str
    direction: str
    study_name: str
    n_trials: int
    n_jobs: int
    space: SearchSpace
    sampler: "optuna.samplers.BaseSampler"
    sampler_cfg: dict[str, Any]
    private: Any = None             # a private_selection.PrivateSelection: K drawn from it replaces n_trials


def _count(field_name: str, value: Any, low: int) -> int:
    """A positive count (n_trials, n_jobs)."""
    from gnnrisk.errors import check_number

    return int(check_number(field_name, value, low=low, integer=True))


def _is_exhaustive(target: Any) -> bool:
    """Whether `target` names Optuna's GridSampler or BruteForceSampler (or a subclass); False when unknown."""
    import optuna
    from hydra.utils import get_class

    try:
        cls = get_class(str(target))
    except Exception:  # noqa: BLE001 - an unknown class: instantiate's own message names it
        return False
    return isinstance(cls, type) and issubclass(cls, (optuna.samplers.GridSampler, optuna.samplers.BruteForceSampler))


def build_sampler(sampler_cfg: Any, seed_offset: int) -> "optuna.samplers.BaseSampler":
    """The configured Optuna sampler (`_target_` and its arguments, TPE by default); its seed moved by
    `seed_offset` (the trials already in the study) so that a resumed study does not redraw its first
    trials' parameters."""
    import optuna
    from hydra.utils import instantiate

    cfg = dict(OmegaConf.to_container(sampler_cfg, resolve=True) if isinstance(sampler_cfg, DictConfig)
               else sampler_cfg or {})
    cfg.setdefault("_target_", "optuna.samplers.TPESampler")
    if cfg.get("seed") is not None:
        cfg["seed"] = int(cfg["seed"]) + seed_offset
    if _is_exhaustive(cfg["_target_"]):  # checked on the class: building one needs arguments it would complain of
        raise ConfigError("hydra.sweeper.sampler", cfg["_target_"], "an exhaustive grid is hydra/sweeper=grid's "
                          "job; here use optuna.samplers.TPESampler, RandomSampler, QMCSampler, ...")
    try:
        sampler = instantiate(cfg)
    except Exception as err:  # an unknown class or argument: the user's config, one line
        cause = err.__cause__ or err
        raise ConfigError("hydra.sweeper.sampler", cfg.get("_target_"), " ".join(str(cause).split())) from None
    if isinstance(sampler, (optuna.samplers.GridSampler, optuna.samplers.BruteForceSampler)):
        # they stop the study from inside when exhausted, which only works in study.optimize()
        raise ConfigError("hydra.sweeper.sampler", cfg["_target_"], "an exhaustive grid is hydra/sweeper=grid's "
                          "job; here use optuna.samplers.TPESampler, RandomSampler, QMCSampler, ...")
    if not isinstance(sampler, optuna.samplers.BaseSampler):
        raise ConfigError("hydra.sweeper.sampler", cfg["_target_"], "expected an optuna.samplers class, e.g. "
                          "optuna.samplers.TPESampler or optuna.samplers.RandomSampler")
    return sampler


def plan_study(config: DictConfig, arguments: Sequence[str], settings: Mapping[str, Any],
               compose: Callable[[list[str]], DictConfig]) -> StudyPlan:
    """Check the objective, the sweeper fields and every search-space value against the config (ConfigError),
    before any trial is launched; `compose` builds the config of a job's overrides."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("hydra/sweeper", "optuna", "needs the optuna package: pip install 'gnnrisk[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # gnnrisk logs each trial itself
    objective = checked_objective(config)
    space = parse_search_space(settings.get("params"), arguments)
    base = _compose_checked(compose, space.fixed)
    configs = [base]
    for name, distribution in space.distributions.items():
        for value in representative_values(distribution):
            trial = space.fixed + [f"{space.keys[name]}={override_value(value)}"]
            configs.append(_compose_checked(compose, trial))
    objective = checked_objective(base)  # the search space's fixed values may set data or eval too
    direction = check_direction(settings.get("direction", "maximize"), objective)
    study_name = settings.get("study_name") or "gnnrisk"
    if not isinstance(study_name, str):
        raise ConfigError("hydra.sweeper.study_name", study_name, "expected a name")
    n_trials = _count("hydra.sweeper.n_trials", settings.get("n_trials"), 1)
    n_jobs = _count("hydra.sweeper.n_jobs", settings.get("n_jobs", 1), 1)
    sampler_cfg = OmegaConf.to_container(settings["sampler"], resolve=True) if isinstance(
        settings.get("sampler"), DictConfig) else dict(settings.get("sampler") or {})
    sampler = build_sampler(sampler_cfg, 0)
    private = None
    if settings.get("private_selection") is not None:
        from gnnrisk.private_selection import PrivateSelection, check_plan

        private = PrivateSelection.from_settings(settings["private_selection"])
        objective = check_plan(private, space.distributions, configs, sampler, objective, space.fixed)
    return StudyPlan(Path(str(config.hydra.sweep.dir)), objective, direction, study_name, n_trials, n_jobs,
                     space, sampler, sampler_cfg, private)


def _compose_checked(compose: Callable[[list[str]], DictConfig], overrides: list[str]) -> DictConfig:
    """The config of `overrides`; Hydra's refusal as gnnrisk's one-line ConfigError."""
    from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from gnnrisk.folders import CONFIG_DIR
    from gnnrisk.preflight import one_line

    try:
        return compose(list(overrides))
    except (ConfigCompositionException, MissingConfigException) as err:
        raise one_line(err, list(overrides), Path(CONFIG_DIR)) from None
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError("override", " ".join(overrides), " ".join(str(err).split())) from None
