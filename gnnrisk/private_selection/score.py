"""Independent noise per trial, and the noisy validation score of node-level trials.

Noise seeds. Papernot and Steinke's runs (like basic composition's) use independent randomness. A run's
`seed` fixes the data and the split, which every trial must share; its `noise_seed` (configs/config.yaml)
seeds the mechanism (initialisation, sampling, DP noise). Under private selection the sweeper gives every
trial its own noise_seed, derived from the study's noise base and the trial number (`trial_noise_seed`):
the base is drawn once from fresh OS entropy (or from `private_selection.seed`, for tests and
reproductions) and kept in the journal, like K. Mechanisms seed several generators from seed, seed+1,
seed+2, ... (seed * 1000 + origin over periods), so the trials' seeds are spread over [0, 2^40) and kept
more than `SEED_GAP` apart: no two trials share a stream. The noise_seed is an override of the trial's job,
so it is part of its run folder's name: two trials that draw the same hyperparameters still get two folders
(leaving it out of the name would make them share one run, and one noise draw).

The noisy score. Under a node-level relation the validation labels are private. The run records
`val_correct` (the count of correctly classified validation nodes) and `num_val`; the sweeper adds
N(0, score_noise^2) to the count (a generator seeded by the trial's noise_seed, so a resumed study reads the
same value), and the study optimises val_acc_noisy = val_correct_noisy / num_val. The denominator is the
same for every trial (the split is fixed by `seed`), so the ranking is the noisy count's; like the
mechanisms' own accounting (the sampling rate B / N_train, delta = 1 / (10 N)), the split sizes are treated
as public. The count's sensitivity and its RDP are in curves.py.
"""

from __future__ import annotations

import math
import secrets
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:
    import optuna

    from gnnrisk.private_selection.setting import PrivateSelection

NOISE_BASE_ATTR = "private_selection_noise_base"   # study attribute: where the trials' noise seeds come from
SEED_BITS, SEED_GAP = 40, 1000
SCORED_OBJECTIVE, NOISY_OBJECTIVE = "val_acc", "val_acc_noisy"
_SCORE_STREAM = zlib.crc32(b"gnnrisk.private_selection.score")
_BASE_STREAM = zlib.crc32(b"gnnrisk.private_selection.noise_base")


def noise_base(study: "optuna.Study", spec: "PrivateSelection") -> int:
    """The study's noise base: drawn once (fresh entropy, or from spec.seed) and kept in the journal."""
    base = study.user_attrs.get(NOISE_BASE_ATTR)
    if base is None:
        base = (secrets.randbits(62) if spec.seed is None
                else int(np.random.SeedSequence([spec.seed, _BASE_STREAM]).generate_state(2, np.uint64)[0] >> 2))
        study.set_user_attr(NOISE_BASE_ATTR, base)
    return int(base)


def trial_noise_seed(base: int, number: int, taken: Iterable[int] = ()) -> int:
    """Trial `number`'s noise_seed in [0, 2^40), more than SEED_GAP away from every seed in `taken`."""
    taken = sorted(int(t) for t in taken)
    for attempt in range(1000):
        state = np.random.SeedSequence([int(base), int(number), attempt]).generate_state(2, np.uint32)
        seed = ((int(state[0]) << 32) | int(state[1])) >> (64 - SEED_BITS)
        if all(abs(seed - t) > SEED_GAP for t in taken):
            return seed
    raise RuntimeError("no free noise seed")  # 2^40 seeds, a study of a few hundred trials: unreachable


def score_draw(noise_seed: int, score_noise: float) -> float:
    """The Gaussian noise N(0, score_noise^2) added to one trial's validation count."""
    return float(np.random.default_rng([int(noise_seed), _SCORE_STREAM]).normal(0.0, float(score_noise)))


def noisy_score(metrics: Mapping[str, Any], noise_seed: int, score_noise: float) -> tuple[dict[str, Any] | None,
                                                                                        str | None]:
    """({val_correct_noisy, val_acc_noisy, score_noise, score_sensitivity}, None) for a finished node-level run,
    or (None, why not)."""
    correct, n = metrics.get("val_correct"), metrics.get("num_val")
    if isinstance(correct, bool) or not isinstance(correct, int) or isinstance(n, bool) or not isinstance(n, int):
        return None, ("metrics.json lacks val_correct and num_val (the count a node-level private selection adds "
                      "noise to; runs on data with periods do not record it)")
    if n <= 0:
        return None, "the validation split is empty (num_val 0)"
    from gnnrisk.private_selection.curves import ACCOUNTING

    spec = ACCOUNTING.get(str(metrics.get("mechanism")))
    try:
        sensitivity = spec.sensitivity(metrics) if spec and spec.sensitivity else None
    except (KeyError, TypeError, ValueError):
        sensitivity = None
    noisy = correct + score_draw(noise_seed, score_noise)
    return {"val_correct_noisy": noisy, NOISY_OBJECTIVE: noisy / n, "score_noise": float(score_noise),
            "score_sensitivity": sensitivity}, None


def score_run(run_dir: Path, noise_seed: int, score_noise: float) -> tuple[float | None, str | None]:
    """(val_acc_noisy, None) of a finished node-level trial, written into its metrics.json (the run folder is
    the curator's, never published: it also holds the exact count), or (None, why the trial failed)."""
    from gnnrisk.results import METRICS_FILE, load_json_object
    from gnnrisk.tuning.objective import read_objective
    from gnnrisk.utils.files import write_json_atomic

    if not (run_dir / METRICS_FILE).exists():
        return read_objective(run_dir, SCORED_OBJECTIVE)  # (None, why the run failed)
    metrics, bad = load_json_object(run_dir / METRICS_FILE)
    if metrics is None:
        return None, f"{METRICS_FILE} {bad}"
    if metrics.get("noise_seed") is not None and int(metrics["noise_seed"]) != int(noise_seed):
        return None, f"the run's noise_seed {metrics['noise_seed']} is not the trial's {noise_seed}"
    fields, why = noisy_score(metrics, noise_seed, score_noise)
    if fields is None:
        return None, why
    if any(metrics.get(k) != v for k, v in fields.items()):
        write_json_atomic(run_dir / METRICS_FILE, {**metrics, **fields})
    value = fields[NOISY_OBJECTIVE]
    return (value, None) if math.isfinite(value) else (None, f"{NOISY_OBJECTIVE} is {value!r}")


__all__ = ["NOISE_BASE_ATTR", "NOISY_OBJECTIVE", "SCORED_OBJECTIVE", "noise_base", "noisy_score",
           "score_draw", "score_run", "trial_noise_seed"]
