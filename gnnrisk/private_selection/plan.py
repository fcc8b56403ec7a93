"""The sweeper's side of a private selection: the checks before any trial, K kept in the journal, best.json.

What Papernot and Steinke need (their section 3) and where gnnrisk checks it:

1. K is random, from the stated distribution, and K itself is not released (`drawn_trials`; docs);
2. each run draws its candidate independently (random search: optuna's RandomSampler; `check_plan`);
3. one RDP bound holds for every candidate (no sampled key enters the mechanism's accounting: `check_plan`;
   the runs' rebuilt RDP curves must be identical: `private_selection_fields`);
4. only the best output, with its score, is released, and that score is covered: at edge level it is
   post-processing of the release; at node level the sweeper releases a noisy validation count whose RDP is
   composed into each trial's (score.py, curves.py);
5. the runs use independent randomness: a distinct `noise_seed` per trial (score.py; tuning.run_study).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from gnnrisk.errors import ConfigError
from gnnrisk.private_selection.bound import pure_tnb_epsilon
from gnnrisk.private_selection.curves import ACCOUNTING, trial_rdp_curve
from gnnrisk.private_selection.score import NOISY_OBJECTIVE, SCORED_OBJECTIVE
from gnnrisk.private_selection.setting import FIELD, PrivateSelection, selection_epsilon

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

SPEC_ATTR, TRIALS_ATTR = "private_selection", "private_selection_trials"  # study attributes: the setting, K
RANDOM_SAMPLER = "optuna.samplers.RandomSampler"
COROLLARY_3 = "Papernot & Steinke 2022, Corollary 3 (pure DP, truncated negative binomial)"
TEMPORAL_DATA = ("synthetic_temporal",)  # data with periods: forecast runs record no validation count


def _shown(distribution: Any) -> Any:
    """A search space as the error shows it: its choices, or its interval."""
    choices = getattr(distribution, "choices", None)
    return list(choices) if choices is not None else f"interval({distribution.low}, {distribution.high})"


def check_plan(spec: PrivateSelection, sampled: Mapping[str, Any], configs: Sequence[Any], sampler: Any,
               objective: str | None = None, fixed: Sequence[str] = ()) -> str | None:
    """Refuse, in one line naming the field, a study that Papernot and Steinke's theorems do not cover
    (`sampled`: the search space, name -> Optuna distribution; `configs`: the composed configs of its trials;
    `fixed`: the overrides every trial shares). Returns the study's objective: `objective`, or val_acc_noisy
    for node-level trials (the sweeper's noisy validation count over num_val)."""
    import optuna

    if not isinstance(sampler, optuna.samplers.RandomSampler):
        raise ConfigError("hydra.sweeper.sampler", type(sampler).__name__, f"private selection needs random search "
                          f"(each trial drawn independently of the earlier scores): _target_: {RANDOM_SAMPLER}")
    for name in sampled:
        if name in ("privacy", "data", "seed") or name.startswith(("data.", "hydra.")):
            raise ConfigError(name, _shown(sampled[name]), "private selection needs every trial to run one "
                              "mechanism on the same data (one RDP bound for every candidate): search model.* and "
                              "train.* keys")
        if name == "noise_seed":
            raise ConfigError(name, _shown(sampled[name]), "under private selection the sweeper gives every trial "
                              "its own noise_seed (independent noise); do not search it")
    for override in fixed:
        if override.split("=", 1)[0].lstrip("+~") == "noise_seed":
            raise ConfigError("noise_seed", override.split("=", 1)[-1], "under private selection the sweeper gives "
                              "every trial its own noise_seed (independent noise); do not set it")
    node_level = False
    for cfg in configs:
        name = str(cfg.privacy.name)
        if name not in ACCOUNTING:
            raise ConfigError("privacy", name, "private selection needs private trials whose RDP curve can be "
                              "rebuilt from metrics.json: " + ", ".join(ACCOUNTING))
        accounting = ACCOUNTING[name]
        epsilon = cfg.privacy.get("epsilon")
        if not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon):
            raise ConfigError("privacy.epsilon", epsilon, "private selection needs private trials (a finite epsilon)")
        for key in accounting.fixed:
            if key in sampled:
                raise ConfigError(key, _shown(sampled[key]), f"{key} enters {name}'s privacy accounting: private "
                                  "selection needs one RDP bound for every candidate; keep it fixed")
        if accounting.unit == "edge":
            if spec.score_noise is not None:
                raise ConfigError(f"{FIELD}.score_noise", spec.score_noise, f"{name} is edge-level: its validation "
                                  "score is post-processing of the release and needs no noise; remove score_noise")
            continue
        node_level = True
        if spec.score_noise is None:
            raise ConfigError(f"{FIELD}.score_noise", None, f"{name} is node-level: the validation labels are "
                              "private, so each trial releases its count of correctly classified validation nodes "
                              "plus Gaussian noise of this std (in nodes), e.g. score_noise: 5 (docs/tuning.md)")
        if objective != SCORED_OBJECTIVE:
            raise ConfigError("eval.objective", objective, f"node-level private selection scores a trial by its "
                              f"noisy count of correctly classified validation nodes: set eval.objective="
                              f"{SCORED_OBJECTIVE} (the study optimises {NOISY_OBJECTIVE})")
        if str(cfg.data.get("name")) in TEMPORAL_DATA:
            raise ConfigError("data", cfg.data.get("name"), "node-level private selection needs one snapshot: runs "
                              "on data with periods record no validation count")
    return NOISY_OBJECTIVE if node_level else objective


def private_selection_fields(spec: PrivateSelection, releases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """best.json's fields for a private selection over these runs (one per run folder whose score was seen)."""
    from gnnrisk.privacy.accounting import epsilon_from_rdp

    out: dict[str, Any] = {"selection_method": "private_selection", "selection_theorem": spec.theorem,
                           "selection_distribution": spec.as_dict(), "selection_expected_trials": spec.mean,
                           "selection_epsilon": None, "selection_delta": None, "selection_epsilon_trial": None,
                           "selection_score_noise": spec.score_noise, "selection_score_sensitivity": None}
    head = f"best of K ~ {spec.describe()} random-search trials"
    if not releases:
        return {**out, "selection_note": f"{head}: no trial completed, nothing is selected or released"}
    rebuilt = [trial_rdp_curve(r) for r in releases]
    unit = "edge" if spec.score_noise is None else "node"
    units = {r.get("privacy_unit") for r in releases}
    if units != {unit} or any(why for _, why in rebuilt):
        why = next((w for _, w in rebuilt if w), f"privacy units {sorted(map(str, units))}, expected {unit} only "
                   f"({'with' if unit == 'node' else 'without'} {FIELD}.score_noise)")
        return {**out, "selection_note": f"{head}: no private-selection bound ({why})"}
    trials = [c for c, _ in rebuilt]
    if any(not trials[0].same_as(c) for c in trials[1:]):
        return {**out, "selection_note": f"{head}: no private-selection bound (the trials' RDP curves differ: one "
                                         "bound for every candidate is needed)"}
    trial, orders = trials[0], trials[0].orders
    curve = trial.with_score(spec.score_noise)
    model_eps = max(float(r["epsilon"]) for r in releases)
    delta = spec.delta if spec.delta is not None else max(float(r.get("delta") or 0.0) for r in releases)
    if delta > 0:
        eps_trial, eps = epsilon_from_rdp(curve, delta, orders), selection_epsilon(curve, spec, delta, orders)
        pure = spec.distribution != "poisson" and releases[0].get("delta") == 0
        if pure and pure_tnb_epsilon(model_eps, float(spec.eta)) < eps:  # pure trials: Corollary 3 may be lower
            eps = pure_tnb_epsilon(model_eps, float(spec.eta))
            out["selection_theorem"] = COROLLARY_3
    elif spec.distribution == "poisson":
        return {**out, "selection_note": f"{head}: the trials are pure epsilon-DP and Theorem 6 bounds the "
                                         f"selection only at a delta > 0: set {FIELD}.delta"}
    else:
        eps_trial, eps = model_eps, pure_tnb_epsilon(model_eps, float(spec.eta))
        out["selection_theorem"] = COROLLARY_3
    out.update(selection_epsilon=eps, selection_delta=delta, selection_epsilon_trial=eps_trial,
               selection_score_sensitivity=trial.sensitivity)
    if unit == "node":
        what = (f"node-level; each trial releases its model and its count of correctly classified validation "
                f"nodes plus N(0, {spec.score_noise:g}^2), sensitivity {trial.sensitivity:g}")
        one = f"one trial with its score: epsilon {eps_trial:.4g}, its model alone {model_eps:.4g}"
    else:
        what, one = "edge-level", f"one trial: epsilon {eps_trial:.4g}"
    out["selection_note"] = (
        f"the {head} ({what}) costs epsilon {eps:.4g} at delta {delta:g} in total, selection included "
        f"({out['selection_theorem']}; {one}); it covers the best trial's parameters, score and model only, "
        f"while K, the other trials, the noise seeds and the study table stay unpublished (docs/tuning.md)")
    return out


def drawn_trials(study: "optuna.Study", spec: PrivateSelection | None) -> int:
    """K for this study: drawn once and kept in its journal, so that resuming never redraws it."""
    earlier = study.user_attrs.get(SPEC_ATTR)
    if spec is None:
        raise ConfigError(FIELD, None, f"this study's number of trials was drawn under private selection "
                          f"{earlier}; resume it with the same setting, or use another hydra.sweep.dir")
    if earlier is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(FIELD, spec.as_dict(), "this study already ran trials without private selection; "
                              "use another hydra.sweep.dir or study_name")
        k = spec.draw()
        study.set_user_attr(SPEC_ATTR, spec.as_dict())
        study.set_user_attr(TRIALS_ATTR, k)
        if spec.seed is not None:
            log.warning("private selection with a fixed seed (%d): anyone who knows it knows K and the trials' noise "
                        "seeds, which the guarantee assumes secret; use seed null for a release", spec.seed)
        log.info("private selection: K=%d trials drawn from %s (keep K unpublished)", k, spec.describe())
        return k
    if earlier != spec.as_dict():
        raise ConfigError(FIELD, spec.as_dict(), f"this study drew its trials under {earlier}; resume it with that "
                          "setting, or use another hydra.sweep.dir")
    return int(study.user_attrs[TRIALS_ATTR])


__all__ = ["COROLLARY_3", "RANDOM_SAMPLER", "SPEC_ATTR", "TRIALS_ATTR", "check_plan", "drawn_trials",
           "private_selection_fields"]
