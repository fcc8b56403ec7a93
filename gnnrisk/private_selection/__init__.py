"""Private hyperparameter selection: the privacy cost of releasing the best of a random number of private trials.

N. Papernot and T. Steinke, "Hyperparameter Tuning with Renyi Differential Privacy", ICLR 2022
(arXiv:2110.03620v2). Setting (their section 3): a base algorithm Q picks its hyperparameters at random from
a fixed distribution (random search, independent of the data and of earlier runs), trains privately and
outputs a result together with its score; the tuned algorithm A draws K from a distribution independent of
the data, runs Q K times with independent randomness and outputs only the best result. docs/tuning.md
describes the whole; the modules hold:

- bound.py: the law of K (truncated negative binomial, Poisson) and the theorems on RDP curves;
- setting.py: `hydra.sweeper.private_selection`, checked (`PrivateSelection`), and the selection's RDP;
- curves.py: each mechanism's RDP curve rebuilt from a run's metrics.json, and at node level the
  sensitivity of the validation count (the argument per mechanism is in its docstring);
- score.py: a distinct noise_seed per trial, and the noisy validation count of node-level trials;
- plan.py: the sweeper's checks before any trial, K kept in the journal, and best.json's fields.
"""

from gnnrisk.private_selection.bound import (delta_from_rdp, expected_trials, gamma_for_mean, pure_dp_rdp,
                                             pure_tnb_epsilon, rdp_poisson_selection, rdp_tnb_selection, tnb_pmf)
from gnnrisk.private_selection.curves import ACCOUNTING, CURVE_FIELDS, Accounting, TrialCurve, trial_rdp_curve
from gnnrisk.private_selection.plan import (COROLLARY_3, RANDOM_SAMPLER, SPEC_ATTR, TRIALS_ATTR, check_plan,
                                            drawn_trials, private_selection_fields)
from gnnrisk.private_selection.score import (NOISE_BASE_ATTR, NOISY_OBJECTIVE, SCORED_OBJECTIVE,
                                             noise_base, noisy_score, score_draw, score_run, trial_noise_seed)
from gnnrisk.private_selection.setting import (DISTRIBUTIONS, FIELD, PrivateSelection, selection_epsilon,
                                               selection_rdp)

__all__ = ["ACCOUNTING", "Accounting", "COROLLARY_3", "CURVE_FIELDS", "DISTRIBUTIONS", "FIELD", "NOISE_BASE_ATTR",
           "NOISY_OBJECTIVE", "PrivateSelection", "RANDOM_SAMPLER", "SCORED_OBJECTIVE", "SPEC_ATTR",
           "TRIALS_ATTR", "TrialCurve", "check_plan", "delta_from_rdp", "drawn_trials", "expected_trials",
           "gamma_for_mean", "noise_base", "noisy_score", "private_selection_fields", "pure_dp_rdp",
           "pure_tnb_epsilon", "rdp_poisson_selection", "rdp_tnb_selection", "score_draw", "score_run",
           "selection_epsilon", "selection_rdp", "tnb_pmf", "trial_noise_seed", "trial_rdp_curve"]
