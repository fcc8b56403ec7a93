"""The study's files in the sweep folder (tuning/trials.csv, tuning/best.json) and the report's note on them."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnnrisk.tuning.plan import StudyPlan
from gnnrisk.tuning.privacy import PRIVACY_FIELDS, run_privacy, selection_privacy
from gnnrisk.tuning.study import ENDED_ATTR, NOISE_SEED_ATTR, REASON_ATTR, RETRY_ATTR, RUN_DIR_ATTR
from gnnrisk.utils.files import write_json_atomic, write_text_atomic

if TYPE_CHECKING:  # optuna is the `tune` extra: imported by the sweeper only, never by a plain run
    import optuna

TUNING_DIR = "tuning"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"


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
