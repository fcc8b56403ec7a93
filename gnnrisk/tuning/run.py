"""Running the study: ask, launch on the Hydra launcher and tell, in batches, until its trials have ended."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from omegaconf import DictConfig, OmegaConf

from gnnrisk.tuning.files import selection, write_study_files
from gnnrisk.tuning.objective import read_objective
from gnnrisk.tuning.plan import StudyPlan
from gnnrisk.tuning.study import (ENDED_ATTR, NOISE_SEED_ATTR, REASON_ATTR, RUN_DIR_ATTR, ended_trials, open_study,
                                  recover_interrupted)

if TYPE_CHECKING:  # optuna is the `tune` extra: imported by the sweeper only, never by a plain run
    import optuna

log = logging.getLogger(__name__)


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
