"""Hyperparameter search with Optuna, behind the Hydra sweeper `hydra/sweeper=optuna` (docs/tuning.md).

The plugin class lives in `hydra_plugins/gnnrisk_sweeper/optuna_sweeper.py` (where Hydra looks for
plugins); the logic is here. The study is a journal file in the sweep folder (`optuna.journal`: no
server, one writer, the sweeping process), so that re-running the same command with the same
`hydra.sweep.dir` continues it: finished trials are kept, a trial interrupted while RUNNING is marked
failed and its parameters re-enqueued (its run folder, named by its overrides, is retried), and the
study runs until `n_trials` trials have ended. Each trial is one job of the configured Hydra launcher;
its objective is read from its run folder's metrics.json, so skipped, resumed and Slurm jobs count alike.

Choosing the best of K private trials by a validation score is itself a function of all K releases:
the study table and `tuning/best.json` mark such a selection and bound its cost by basic composition, or,
under `private_selection` (random search over a random number of trials, each with its own noise_seed; at
node level scored by a noisy validation count), by Papernot and Steinke's theorems (gnnrisk/private_selection/).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from gnnrisk.errors import ConfigError
from gnnrisk.results import ERROR_FILE, METRICS_FILE
from gnnrisk.train.objective import OBJECTIVE_METRICS, allowed_objectives, check_objective
from gnnrisk.utils.files import write_json_atomic, write_text_atomic

if TYPE_CHECKING:  # optuna is the `tune` extra: imported by the sweeper only, never by a plain run
    import optuna
    from optuna.distributions import BaseDistribution

log = logging.getLogger(__name__)

# Data sources that generate a ground truth `y_true` besides the recorded `y` (so `val_*_true` exists).
GROUND_TRUTH_DATA = ("synthetic", "synthetic_temporal")
DIRECTIONS = ("maximize", "minimize")
JOURNAL_FILE = "optuna.journal"
TUNING_DIR = "tuning"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"
# Trial user attributes: where its job ran, whether that job ended (a FAIL without it was interrupted),
# which interrupted trial it retries, and why it failed.
RUN_DIR_ATTR, ENDED_ATTR, RETRY_ATTR, REASON_ATTR = "run_dir", "job_ended", "retry_of", "failure"
NOISE_SEED_ATTR = "noise_seed"  # under private selection: the noise_seed the trial's run got (private_selection.score)
OBJECTIVE_ATTR = "objective"  # a study attribute: the metric its values are of


def check_direction(direction: Any, objective: str) -> str:
    """`hydra.sweeper.direction`: maximize, since every allowed objective is higher-is-better."""
    if direction not in DIRECTIONS:
        raise ConfigError("hydra.sweeper.direction", direction, "expected one of " + ", ".join(DIRECTIONS))
    if direction == "minimize":
        raise ConfigError("hydra.sweeper.direction", direction, f"{objective} is higher-is-better (accuracy, "
                          "AUROC, AUPRC, F1): minimizing it selects the worst configuration; expected maximize")
    return direction


# --- the search space ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSpace:
    """The sampled parameters (name -> Optuna distribution) and the overrides every trial shares, in order."""

    distributions: dict[str, "BaseDistribution"]
    keys: dict[str, str]            # parameter name -> its override key (with a `+`/`++` prefix if given)
    fixed: list[str]                # overrides that are the same in every trial

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The override list of a trial with these sampled values (the shared ones first)."""
        return self.fixed + [f"{self.keys[name]}={override_value(params[name])}" for name in self.distributions]


def override_value(value: Any) -> str:
    """A sampled value as Hydra override text (`null`, `true`, numbers in full precision, quoted strings)."""
    from hydra.core.override_parser.types import Override

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return Override._get_value_element_as_str(value)


def distribution_of(override: Any, where: str) -> "BaseDistribution":
    """The Optuna distribution of one sweep override: choice -> categorical, integer range -> int with step,
    interval -> float (tag `log`: log scale; tag `int`: integers)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    text = override.input_line.split("=", 1)[-1]
    value = override.value()
    if isinstance(value, ChoiceSweep):
        choices = list(override.sweep_iterator())
        bad = [c for c in choices if not isinstance(c, (str, int, float, bool))]
        if bad or not choices:
            raise ConfigError(where, text, "choice() of numbers, strings or booleans expected (no lists, dicts "
                              "or null)")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(where, text, "an empty range")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)) and value.step > 0:
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return CategoricalDistribution(values)
    if isinstance(value, IntervalSweep):
        unknown = set(value.tags) - {"log", "int"}
        if unknown:
            raise ConfigError(where, text, f"unknown tag(s) {', '.join(sorted(unknown))}: interval() takes the "
                              "tags log and int")
        low, high, log_scale = float(value.start), float(value.end), "log" in value.tags
        if not low < high:
            raise ConfigError(where, text, "interval(low, high) needs low < high")
        if log_scale and low <= 0:
            raise ConfigError(where, text, "tag(log, interval(low, high)) needs low > 0")
        if "int" in value.tags:
            if low != int(low) or high != int(high):
                raise ConfigError(where, text, "tag(int, interval(low, high)) needs integer ends")
            return IntDistribution(int(low), int(high), log=log_scale)
        return FloatDistribution(low, high, log=log_scale)
    raise ConfigError(where, text, "expected choice(...), a,b,c, range(...), interval(...) or "
                      "tag(log, interval(...))")


def parse_search_space(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> SearchSpace:
    """The search space of `hydra.sweeper.params` and the command line (a later key replaces an earlier one).

    Sweep syntax (choice, a,b,c, range, interval, tag(log, ...)) is sampled; a plain value is fixed.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    entries: dict[str, tuple[str, Any, str]] = {}  # name -> (override key, parsed override, error field)
    for key, value in (params or {}).items():
        if isinstance(value, (Mapping, DictConfig, list, tuple)):
            raise ConfigError(f"hydra.sweeper.params.{key}", value, "one search space per dotted key, e.g. "
                              "'model.dropout: interval(0.0, 0.5)' (on the command line give the sweep itself: "
                              "model.dropout='interval(0.0,0.5)')")
    texts = [(f"{k}={'null' if v is None else v}", f"hydra.sweeper.params.{k}") for k, v in (params or {}).items()]
    texts += [(a, None) for a in arguments]
    for text, where in texts:
        try:
            override = parser.parse_override(text)
        except HydraException as err:
            raise ConfigError(where or text.split("=", 1)[0], text.split("=", 1)[-1],
                              " ".join(str(err).split())) from None
        name = override.key_or_group
        entries.pop(name, None)  # keep the order of the last setting
        entries[name] = (override.get_key_element(), override, where or name)
    distributions, keys, fixed = {}, {}, []
    for name, (key, override, where) in entries.items():
        if override.is_sweep_override():
            distributions[name] = distribution_of(override, where)
            keys[name] = key
        else:
            fixed.append(override.input_line)  # as written (`~key` deletions included)
    if not distributions:
        raise ConfigError("hydra.sweeper.params", dict(params or {}), "nothing to search: give at least one "
                          "parameter a search space, e.g. train.lr: tag(log, interval(1e-4, 1e-1))")
    return SearchSpace(distributions, keys, fixed)


def representative_values(distribution: "BaseDistribution") -> list[Any]:
    """Values that exercise a distribution when checking that its overrides compose: every choice, both ends."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.low, distribution.high]


# --- the plan: everything checked before the first trial ----------------------------------------------------


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
    objective = _checked_objective(config)
    space = parse_search_space(settings.get("params"), arguments)
    base = _compose_checked(compose, space.fixed)
    configs = [base]
    for name, distribution in space.distributions.items():
        for value in representative_values(distribution):
            trial = space.fixed + [f"{space.keys[name]}={override_value(value)}"]
            configs.append(_compose_checked(compose, trial))
    objective = _checked_objective(base)  # the search space's fixed values may set data or eval too
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


def _checked_objective(cfg: DictConfig) -> str:
    """The composed config's `eval.objective`: required by the sweeper, a validation metric of its data."""
    objective = cfg.get("eval", {}).get("objective")
    has_truth = cfg.get("data", {}).get("name") in GROUND_TRUTH_DATA
    if objective is None:
        raise ConfigError("eval.objective", None, "hydra/sweeper=optuna needs the validation metric to optimise, "
                          "e.g. eval.objective=val_auroc; allowed: " + ", ".join(allowed_objectives(has_truth)))
    return str(check_objective(objective, has_truth))


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


# --- running the study ----------------------------------------------------------------------------------------


def open_study(plan: StudyPlan) -> "optuna.Study":
    """The study in `<sweep dir>/optuna.journal`, created or continued; a continued one must optimise the same
    objective in the same direction."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(plan.sweep_dir / JOURNAL_FILE)))
    study = optuna.create_study(storage=storage, study_name=plan.study_name, direction=plan.direction,
                                sampler=plan.sampler, load_if_exists=True)
    if study.direction.name.lower() != plan.direction:
        raise ConfigError("hydra.sweeper.direction", plan.direction, f"study {plan.study_name!r} in "
                          f"{plan.sweep_dir} was created to {study.direction.name.lower()}; use another "
                          "hydra.sweep.dir or study_name")
    earlier = study.user_attrs.get(OBJECTIVE_ATTR)
    if earlier is None:
        study.set_user_attr(OBJECTIVE_ATTR, plan.objective)
    elif earlier != plan.objective:
        raise ConfigError("eval.objective", plan.objective, f"study {plan.study_name!r} in {plan.sweep_dir} "
                          f"optimises {earlier}; use another hydra.sweep.dir or study_name")
    if study.trials:
        study.sampler = build_sampler(plan.sampler_cfg, len(study.trials))
    return study


def recover_interrupted(study: "optuna.Study") -> int:
    """Mark trials left RUNNING by an interrupted sweep as failed and re-enqueue their parameters once (so
    that their run folder is retried); returns how many were recovered."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        log.info("trial %d was interrupted (%s): marked failed, retried", trial.number,
                 trial.user_attrs.get(RUN_DIR_ATTR, "no run folder"))
    retried = {t.user_attrs.get(RETRY_ATTR) for t in study.get_trials(deepcopy=False)}
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if not trial.user_attrs.get(ENDED_ATTR) and trial.number not in retried:
            keep = {NOISE_SEED_ATTR: trial.user_attrs[NOISE_SEED_ATTR]} if NOISE_SEED_ATTR in trial.user_attrs else {}
            study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number, **keep})
            count += 1
    return count


def ended_trials(study: "optuna.Study") -> int:
    """Trials whose job ran to its end (complete, or failed in the run); interrupted ones do not count."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and t.user_attrs.get(ENDED_ATTR)))


def read_objective(run_dir: Path, objective: str) -> tuple[float | None, str | None]:
    """(the objective from the run folder's metrics.json, None), or (None, why the trial failed)."""
    from gnnrisk.results import load_json_object

    if not (run_dir / METRICS_FILE).exists():
        error, _ = load_json_object(run_dir / ERROR_FILE) if (run_dir / ERROR_FILE).exists() else (None, None)
        return None, f"run failed: {error.get('error')}" if error else f"no {METRICS_FILE} (the job did not finish)"
    metrics, why = load_json_object(run_dir / METRICS_FILE)
    if metrics is None:
        return None, f"{METRICS_FILE} {why}"
    value = metrics.get(objective)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"{objective} is {value!r} in {METRICS_FILE} (undefined on this validation split)"
    return float(value), None


def job_dir(compose: Callable[[list[str]], DictConfig], overrides: list[str], num: int) -> Path:
    """The run folder Hydra gives the job with these overrides (hydra.sweep.dir / hydra.sweep.subdir)."""
    from omegaconf import open_dict

    cfg = compose(list(overrides))
    with open_dict(cfg):
        cfg.hydra.job.id, cfg.hydra.job.num = str(num), num
    return Path(str(cfg.hydra.sweep.dir)) / str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


def run_study(plan: StudyPlan, launch: Callable[[list[list[str]], int], Any],
              compose: Callable[[list[str]], DictConfig]) -> "optuna.Study":
    """Ask, launch and tell in batches of `n_jobs` until `n_trials` trials have ended; write the study table
    and best.json after every batch. `launch(job_overrides, first_job_number)` is the Hydra launcher's."""
    from optuna.trial import TrialState

    study = open_study(plan)
    noise = None  # under private selection: the study's noise base (each trial's noise_seed comes from it)
    if plan.private is not None or "private_selection" in study.user_attrs:  # K replaces n_trials, drawn once
        from gnnrisk.private_selection import drawn_trials, noise_base

        plan.n_trials = drawn_trials(study, plan.private)
        noise = noise_base(study, plan.private)
    recovered = recover_interrupted(study)
    done = ended_trials(study)
    if done or recovered:
        log.info("study %s continues in %s: %d of %d trials ended earlier, %d interrupted one(s) to retry",
                 plan.study_name, plan.sweep_dir, done, plan.n_trials, recovered)
    write_study_files(study, plan)
    while done < plan.n_trials:
        batch = [study.ask(plan.space.distributions) for _ in range(min(plan.n_jobs, plan.n_trials - done))]
        jobs: dict[tuple[str, ...], list[Any]] = {}  # one job per distinct overrides (a repeat reads its folder)
        for trial in batch:
            extra = [] if noise is None else [f"noise_seed={trial_noise_seed_of(study, trial, noise)}"]
            jobs.setdefault(tuple(plan.space.overrides(trial.params) + extra), []).append(trial)
        folders = {}
        for num, (overrides, trials) in enumerate(jobs.items(), start=batch[0].number):
            folders[overrides] = job_dir(compose, list(overrides), num)
            for trial in trials:
                trial.set_user_attr(RUN_DIR_ATTR, _relative(folders[overrides], plan.sweep_dir))
        launch([list(o) for o in jobs], batch[0].number)
        for overrides, trials in jobs.items():
            if noise is not None and plan.private.score_noise is not None:  # node level: the noisy count
                from gnnrisk.private_selection import score_run

                value, why = score_run(folders[overrides], trials[0].user_attrs[NOISE_SEED_ATTR],
                                       plan.private.score_noise)
            else:
                value, why = read_objective(folders[overrides], plan.objective)
            for trial in trials:
                trial.set_user_attr(ENDED_ATTR, True)
                if value is None:
                    trial.set_user_attr(REASON_ATTR, why)
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning("trial %d failed (%s); the study goes on", trial.number, why)
                else:
                    study.tell(trial, value)
                    log.info("trial %d: %s=%.4f %s", trial.number, plan.objective, value, trial.params)
        done = ended_trials(study)
        write_study_files(study, plan)
    best = selection(study, plan)
    if best.get("best_trial") is not None:
        log.info("best trial %d: %s=%.4f %s (%s)", best["best_trial"], plan.objective, best["best_value"],
                 best["best_params"], best["best_run_dir"])
    return study


def trial_noise_seed_of(study: "optuna.Study", trial: "optuna.Trial", base: int) -> int:
    """The trial's noise_seed under private selection: kept from the interrupted trial it retries, else drawn
    from the study's noise base and its number, away from every other trial's (private_selection.score)."""
    from gnnrisk.private_selection import trial_noise_seed

    seed = trial.user_attrs.get(NOISE_SEED_ATTR)
    if seed is None:
        taken = [t.user_attrs[NOISE_SEED_ATTR] for t in study.get_trials(deepcopy=False)
                 if NOISE_SEED_ATTR in t.user_attrs and t.number != trial.number]
        seed = trial_noise_seed(base, trial.number, taken)
        trial.set_user_attr(NOISE_SEED_ATTR, seed)
    return int(seed)


def _relative(path: Path, root: Path) -> str:
    """`path` relative to `root` when inside it (run folders of a sweep), else as given."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


# --- the study table, the selection and its privacy cost -------------------------------------------------------

PRIVACY_FIELDS = ("mechanism", "privacy_unit", "epsilon", "delta")


def run_privacy(run_dir: Path) -> dict[str, Any]:
    """The privacy fields of a finished run (metrics.json), empty when it has none."""
    from gnnrisk.results import load_json_object

    metrics = load_json_object(run_dir / METRICS_FILE)[0] if (run_dir / METRICS_FILE).exists() else None
    if not metrics:
        return {}
    from gnnrisk.private_selection import CURVE_FIELDS  # what a private selection rebuilds a trial's curve from

    return {k: metrics.get(k) for k in (*PRIVACY_FIELDS, "privacy_unit_detail", *CURVE_FIELDS)}


def selection_privacy(releases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What selecting among these releases (one per distinct run folder whose score was seen) costs.

    The selected run's epsilon covers that one trial. Under an edge-level relation the labels are public,
    so each score is post-processing of its trial's release and the selection, a function of all of
    them, costs at most the sums of epsilon and delta (basic composition). Under a node-level relation
    the validation labels are private and the scores read them outside every mechanism: no epsilon
    covers the selection (selection_bounded false; the models' own sum is still given). A non-private
    trial among private ones, or trials under different relations, leave no finite bound either.
    """
    private = [r for r in releases if r.get("epsilon") is not None]
    out: dict[str, Any] = {"selection_private": bool(private), "selection_releases": len(releases)}
    if not private:
        return {**out, "privacy_unit": None, "selection_relation": None, "epsilon_per_trial": None,
                "selection_epsilon_upper": None, "selection_delta_upper": None, "selection_bounded": None,
                "models_epsilon_sum": None, "models_delta_sum": None, "selection_reads_private_labels": False,
                "selection_note": None}
    units = sorted({str(r.get("privacy_unit")) for r in private})
    details = sorted({str(r["privacy_unit_detail"]) for r in private if r.get("privacy_unit_detail")})
    one_relation = len(units) == 1 and len(private) == len(releases)
    relation = f"{units[0]}-level" + (f" ({'; '.join(details)})" if details else "") if len(units) == 1 else None
    reads_labels = "node" in units
    bounded = one_relation and not reads_labels
    eps_sum = sum(float(r["epsilon"]) for r in private)
    delta_sum = sum(float(r.get("delta") or 0.0) for r in private)
    per_trial = max(float(r["epsilon"]) for r in private)
    out.update({
        "privacy_unit": units[0] if len(units) == 1 else "mixed",
        "selection_relation": relation,
        "epsilon_per_trial": per_trial,
        "selection_epsilon_upper": eps_sum if bounded else None,
        "selection_delta_upper": delta_sum if bounded else None,
        "selection_bounded": bounded,
        "models_epsilon_sum": eps_sum if one_relation else None,
        "models_delta_sum": delta_sum if one_relation else None,
        "selection_reads_private_labels": reads_labels,
    })
    trials = f"{len(releases)} private trials" if len(private) == len(releases) else \
        f"{len(releases)} trials ({len(private)} private)"
    head = (f"the selection of the best of {trials} is itself a release that no run's "
            f"epsilon ({per_trial:g} per trial at most) covers")
    if bounded:
        out["selection_note"] = (f"{head}; by basic composition over every trial it costs at most epsilon "
                                 f"{eps_sum:g}, delta {delta_sum:g} ({relation})")
    elif len(private) < len(releases):
        out["selection_note"] = (f"{head}, and {len(releases) - len(private)} non-private trial(s) took part: "
                                 "the selection has no finite privacy bound")
    elif len(units) > 1:
        out["selection_note"] = (f"{head}; the trials protect different neighbouring relations ({', '.join(units)}): "
                                 "no single bound")
    else:
        out["selection_note"] = (
            f"{head}; under node-level DP the validation labels are private and every trial's score reads them "
            f"outside the mechanism, so the selection has no finite privacy bound (the {len(releases)} models "
            f"alone compose to epsilon {eps_sum:g}, delta {delta_sum:g}; {relation})")
    return out


def study_rows(study: "optuna.Study", plan: StudyPlan) -> list[dict[str, Any]]:
    """One row per trial: number, state, objective, parameters, run folder, privacy of its run, retry/failure."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        run_dir = trial.user_attrs.get(RUN_DIR_ATTR)
        state = trial.state.name
        if state == "FAIL" and not trial.user_attrs.get(ENDED_ATTR):
            state = "INTERRUPTED"
        privacy = run_privacy(plan.sweep_dir / run_dir) if run_dir and trial.state.name == "COMPLETE" else {}
        noise = {"noise_seed": trial.user_attrs[NOISE_SEED_ATTR]} if NOISE_SEED_ATTR in trial.user_attrs else {}
        rows.append({"number": trial.number, "state": state, plan.objective: trial.value,
                     **{f"params.{k}": v for k, v in trial.params.items()}, **noise, "run_dir": run_dir,
                     **{k: privacy.get(k) for k in PRIVACY_FIELDS},
                     "retry_of": trial.user_attrs.get(RETRY_ATTR), "failure": trial.user_attrs.get(REASON_ATTR)})
    return rows


def selection(study: "optuna.Study", plan: StudyPlan) -> dict[str, Any]:
    """The content of tuning/best.json: the best trial, the counts, and the privacy cost of the selection."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    folders = list(dict.fromkeys(t.user_attrs.get(RUN_DIR_ATTR) for t in complete if t.user_attrs.get(RUN_DIR_ATTR)))
    out: dict[str, Any] = {
        "study_name": plan.study_name, "objective": plan.objective, "direction": plan.direction,
        "n_trials": plan.n_trials, "trials_complete": len(complete),
        "trials_failed": sum(1 for t in failed if t.user_attrs.get(ENDED_ATTR)),
        "trials_interrupted": sum(1 for t in failed if not t.user_attrs.get(ENDED_ATTR)),
        "sampler": plan.sampler_cfg.get("_target_", "optuna.samplers.TPESampler"),
        "sampler_seed": plan.sampler_cfg.get("seed"),
        "best_trial": None, "best_value": None, "best_params": None, "best_run_dir": None, "best_overrides": None,
    }
    if complete:
        best = study.best_trial
        out.update({"best_trial": best.number, "best_value": best.value, "best_params": best.params,
                    "best_run_dir": best.user_attrs.get(RUN_DIR_ATTR),
                    "best_overrides": plan.space.overrides(best.params)})
    releases = [run_privacy(plan.sweep_dir / f) for f in folders]
    out.update(selection_privacy(releases))
    if plan.private is not None:
        from gnnrisk.private_selection import private_selection_fields

        out.update(private_selection_fields(plan.private, releases))
    return out


def write_study_files(study: "optuna.Study", plan: StudyPlan) -> None:
    """`tuning/trials.csv` (the study table) and `tuning/best.json` (the selection) in the sweep folder."""
    rows = study_rows(study, plan)
    best = selection(study, plan)
    columns = list(dict.fromkeys(k for row in rows for k in row)) or ["number", "state", plan.objective]
    columns += ["selection_private"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "selection_private": best["selection_private"]})
    folder = plan.sweep_dir / TUNING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / TRIALS_FILE, text.getvalue())
    write_json_atomic(folder / BEST_FILE, best)


def selection_notes(sweep_dir: Path) -> list[str]:
    """The report's note for a sweep folder holding a tuning study over private trials (none otherwise)."""
    from gnnrisk.results import load_json_object

    path = Path(sweep_dir) / TUNING_DIR / BEST_FILE
    best = load_json_object(path)[0] if path.exists() else None
    if not best or not best.get("selection_private"):
        return []
    label = ("PRIVATE HYPERPARAMETER SELECTION" if best.get("selection_epsilon") is not None
             else "HYPERPARAMETER SELECTION NOT COVERED BY EPSILON")
    return [f"{label}: {best.get('selection_note')} (tuning/best.json; docs/tuning.md)"]


__all__ = ["check_objective", "allowed_objectives", "parse_search_space", "plan_study", "run_study",
           "selection_privacy", "selection_notes"]
