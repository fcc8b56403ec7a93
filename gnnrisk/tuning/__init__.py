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

The modules hold:

- space.py: the search space, as Optuna distributions, and a sampled value as override text;
- objective.py: the objective and its direction, checked, and its value in a trial's run folder;
- plan.py: the study plan, everything checked before the first trial, and the sampler;
- study.py: the study in its journal file, the attributes it keeps per trial, interrupted trials;
- run.py: running the study in batches of the Hydra launcher's jobs;
- privacy.py: a run's privacy fields and the privacy cost of the selection;
- files.py: tuning/trials.csv, tuning/best.json and the report's note on a private selection.

Re-exported here: the names that the sweeper plugin, the report and the tests import from `gnnrisk.tuning`.
"""

from gnnrisk.train.objective import OBJECTIVE_METRICS, allowed_objectives, check_objective
from gnnrisk.tuning.files import selection_notes, write_study_files
from gnnrisk.tuning.objective import check_direction, read_objective
from gnnrisk.tuning.plan import StudyPlan, build_sampler, plan_study
from gnnrisk.tuning.privacy import selection_privacy
from gnnrisk.tuning.run import run_study
from gnnrisk.tuning.space import SearchSpace, override_value, parse_search_space
from gnnrisk.tuning.study import NOISE_SEED_ATTR, RETRY_ATTR, ended_trials, recover_interrupted

__all__ = ["NOISE_SEED_ATTR", "OBJECTIVE_METRICS", "RETRY_ATTR", "SearchSpace", "StudyPlan", "allowed_objectives",
           "build_sampler", "check_direction", "check_objective", "ended_trials", "override_value",
           "parse_search_space", "plan_study", "read_objective", "recover_interrupted", "run_study",
           "selection_notes", "selection_privacy", "write_study_files"]
