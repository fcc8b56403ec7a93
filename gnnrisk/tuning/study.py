"""The study in its journal file: the attributes it keeps per trial, opening or continuing it, interrupted trials."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gnnrisk.errors import ConfigError
from gnnrisk.tuning.plan import StudyPlan, build_sampler

if TYPE_CHECKING:  # optuna is the `tune` extra: imported by the sweeper only, never by a plain run
    import optuna

log = logging.getLogger(__name__)


JOURNAL_FILE = "optuna.journal"
# Trial user attributes: where its job ran, whether that job ended (a FAIL without it was interrupted),
# which interrupted trial it retries, and why it failed.
RUN_DIR_ATTR, ENDED_ATTR, RETRY_ATTR, REASON_ATTR = "run_dir", "job_ended", "retry_of", "failure"
NOISE_SEED_ATTR = "noise_seed"  # under private selection: the noise_seed the trial's run got (private_selection.score)
OBJECTIVE_ATTR = "objective"  # a study attribute: the metric its values are of


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
