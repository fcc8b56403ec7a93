"""Group runs that differ only by seed: mean, unbiased std (ddof=1), count and Student-t interval of every metric,
and the paired difference of each private group to the non-private run of the same settings and seed."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from gnnrisk.report.collect import CONFIG_PREFIX, FINISHED, ReportWarning

SEED_KEY = CONFIG_PREFIX + "seed"
# Config values the run did not use: a non-private run (`privacy=none`) has no privacy parameters,
# so a sweep that crosses `none` with an epsilon axis repeats the same run; those collapse into one group.
PRIVACY_PARAMS = CONFIG_PREFIX + "privacy."
PRIVACY_NAME = CONFIG_PREFIX + "privacy.name"
EPSILON_KEY = CONFIG_PREFIX + "privacy.epsilon"
# Config keys that never define a group: bookkeeping, not part of the experiment.
IGNORED_KEYS = (SEED_KEY, CONFIG_PREFIX + "skip_finished")
# Copies of the run's own groups inside a stage's config (`attack.target` interpolates privacy, model,
# train): never a key of their own, so that tables say `privacy.name`, not `attack.target.privacy.name`.
MIRRORED_PREFIXES = (CONFIG_PREFIX + "attack.target.",)
N_RUNS = "n_runs"
# Text facts of a group shown next to its keys: which neighbouring relation its epsilon is about.
INFO_COLUMNS = ("privacy_unit",)
CI_LEVEL = 0.95
NONPRIVATE = "none"
# Spent budgets follow from the target (no sampling over seeds): no interval, no paired difference.
BUDGETS = ("epsilon", "delta")
MIN_SEEDS = 3
# Joins a run's matching values into one text key: a character no config value contains.
_KEY_SEP = "\x1f"


def label(key: str) -> str:
    """A group key's display name: the config path without the `cfg.` prefix."""
    return key[len(CONFIG_PREFIX):] if key.startswith(CONFIG_PREFIX) else key


def normalise_unused(runs: pd.DataFrame) -> pd.DataFrame:
    """Blank the privacy parameters of non-private runs (the `none` mechanism ignores them)."""
    runs = runs.copy()
    if PRIVACY_NAME in runs:
        params = [c for c in runs.columns if c.startswith(PRIVACY_PARAMS) and c != PRIVACY_NAME]
        nonprivate = runs[PRIVACY_NAME] == "none"
        for col in params:
            runs[col] = runs[col].astype(object).where(~nonprivate, None)
    return runs


def _is_primary(key: str) -> bool:
    """Keys a reader looks for in a table (a component's name, the target epsilon): kept when redundant ones go.

    (The target delta is often `null` = a default that depends on the graph: the table shows the spent delta.)
    """
    return key.endswith(".name") or key == CONFIG_PREFIX + "privacy.epsilon"


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as comparable text, every missing value (None, NaN) as one value of its own, "None".

    (pandas' astype(str) leaves missing values missing, and nunique or a text join would then skip them.)
    """
    return frame.astype(object).where(frame.notna(), None).map(str)


def config_columns(runs: pd.DataFrame) -> list[str]:
    """Config columns that may define a group: neither bookkeeping nor a copy of another group's values."""
    return [c for c in runs.columns if c.startswith(CONFIG_PREFIX) and c not in IGNORED_KEYS
            and not c.startswith(MIRRORED_PREFIXES)]


def group_keys(runs: pd.DataFrame) -> list[str]:
    """Config columns whose value differs between runs (seed aside), without those the others determine.

    Every mechanism brings its own parameters (`privacy.max_degree`, ...): they vary across a sweep but
    follow from `privacy.name`, so they would only widen the table. A secondary key (not a name or budget) is dropped when runs that agree
    on all other keys always agree on it too; the groups stay the same.
    """
    cols = config_columns(runs)
    text = as_text(runs[cols])
    keys = [c for c in cols if text[c].nunique() > 1]
    for key in [k for k in keys if not _is_primary(k)]:  # names and budgets always stay: readers look for them
        rest = [k for k in keys if k != key]
        if rest and (text.groupby(rest)[key].nunique() <= 1).all():
            keys = rest
    return sorted(keys, key=lambda k: not k.endswith(".name"))  # names first, then the order of the config


def drop_repeats(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Keep one run per (group, seed): repeats would inflate the count and shrink the std."""
    ident = as_text(runs[keys + [SEED_KEY]] if SEED_KEY in runs else runs[keys])
    repeated = ident.duplicated(keep="first")
    if repeated.any():
        warnings.warn(f"{int(repeated.sum())} run(s) repeat another run (same seed, same config apart from "
                      f"parameters their mechanism ignores, e.g. `none` crossed with an epsilon axis): each seed "
                      f"counted once; repeats: "
                      f"{', '.join(runs.loc[repeated, 'run'].head(4))}", ReportWarning, stacklevel=2)
    return runs.loc[~repeated]


def t_interval(mean: object, std: object, n: object) -> tuple[np.ndarray, np.ndarray]:
    """The CI_LEVEL Student-t interval of a mean of n values with sample std `std` (n-1 dof); NaN when n < 2."""
    mean, std, n = (np.asarray(v, float) for v in (mean, std, n))
    dof = np.where(n >= 2, n - 1, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = student_t.ppf(0.5 + CI_LEVEL / 2, dof) * std / np.sqrt(n)
    return mean - half, mean + half


def pair_columns(runs: pd.DataFrame) -> list[str]:
    """What a private run shares with its non-private reference: every varying non-privacy config value, the seed."""
    cols = [c for c in config_columns(runs) if not c.startswith(PRIVACY_PARAMS)]
    text = as_text(runs[cols])
    return [c for c in cols if text[c].nunique() > 1] + [SEED_KEY]


def _minus_matched(rows: pd.DataFrame, wanted: pd.Series, reference: pd.DataFrame, keys: pd.Series,
                   metrics: list[str]) -> pd.DataFrame:
    """`rows[metrics]` minus those of the `reference` row whose key (`keys`) is each row's `wanted`; NaN if none.

    Reference keys must be unique (one run per group and seed): reindex raises otherwise.
    """
    matched = reference[metrics].astype(float).set_index(keys).reindex(wanted).to_numpy(float)
    return rows[metrics].astype(float) - matched


def paired_differences(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """`<m>_diff` per run: a private run's metric minus its non-private run's (same settings, same seed); NaN if none.

    No columns when the sweep has no private run, or no non-private one to compare with (a note then).
    `runs` must hold one run per (group, seed) (`drop_repeats`), so each reference seed is used once.
    """
    if PRIVACY_NAME not in runs or SEED_KEY not in runs or not metrics:
        return pd.DataFrame(index=runs.index)
    private = (runs[PRIVACY_NAME] != NONPRIVATE).to_numpy()
    if not private.any():
        return pd.DataFrame(index=runs.index)
    if private.all():
        warnings.warn("no non-private runs (privacy=none) in this sweep: no paired differences", ReportWarning,
                      stacklevel=2)
        return pd.DataFrame(index=runs.index)
    ident = as_text(runs[pair_columns(runs)]).agg(_KEY_SEP.join, axis=1)
    diffs = _minus_matched(runs[private], ident[private], runs[~private], ident[~private], metrics)
    return diffs.reindex(runs.index).add_suffix("_diff")


def rise_differences(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """`<m>_rise` per private run: its metric minus the same mechanism's at the next lower target epsilon
    (same settings, same seed); NaN at a mechanism's lowest epsilon. Whether utility rises with epsilon."""
    if EPSILON_KEY not in runs or PRIVACY_NAME not in runs or SEED_KEY not in runs or not metrics:
        return pd.DataFrame(index=runs.index)
    private = runs[runs[PRIVACY_NAME] != NONPRIVATE]
    if private.empty:
        return pd.DataFrame(index=runs.index)
    eps = pd.to_numeric(private[EPSILON_KEY], errors="coerce")
    same = [c for c in pair_columns(private) if c != SEED_KEY] + [
        c for c in config_columns(private) if c.startswith(PRIVACY_PARAMS) and c != EPSILON_KEY]
    group = as_text(private[same]).agg(_KEY_SEP.join, axis=1) if same else pd.Series("", index=private.index)
    levels = pd.DataFrame({"group": group, "eps": eps}).drop_duplicates().sort_values(["group", "eps"])
    levels["previous"] = levels.groupby("group")["eps"].shift(1)
    previous = pd.DataFrame({"group": group, "eps": eps}).merge(levels, on=["group", "eps"], how="left")["previous"]
    seed = as_text(private[[SEED_KEY]])[SEED_KEY]
    key = group + _KEY_SEP + eps.map(repr) + _KEY_SEP + seed
    wanted = group + _KEY_SEP + pd.Series(previous.to_numpy(), index=private.index).map(repr) + _KEY_SEP + seed
    rises = _minus_matched(private, wanted, private, key, metrics)
    return rises.reindex(runs.index).add_suffix("_rise")


def _warn_few_seeds(sizes: pd.Series) -> None:
    """Warn when some groups have too few seeds for a useful interval."""
    few = int((sizes < MIN_SEEDS).sum())
    if few:
        warnings.warn(f"{few} group(s) have fewer than {MIN_SEEDS} seeds: intervals are undefined (n=1) or very "
                      f"wide (n=2)", ReportWarning, stacklevel=3)


def _warn_unpaired(stats: pd.DataFrame, diffs: list[str], private: np.ndarray) -> None:
    """Warn about private groups that found no non-private run with the same settings and seed."""
    unpaired = int((private & stats[[f"{d}_n" for d in diffs]].isna().all(axis=1)).sum())
    if unpaired:
        warnings.warn(f"{unpaired} private group(s) have no non-private run with the same settings and seed: "
                      f"no paired difference for them", ReportWarning, stacklevel=3)


def _with_intervals(stats: pd.DataFrame, metrics: list[str], diffs: list[str]) -> pd.DataFrame:
    """Add `_ci_lo`/`_ci_hi` to every metric and difference; difference counts as `_diff_n`, NaN without pairs."""
    for name in metrics + diffs:
        lo, hi = t_interval(stats[f"{name}_mean"], stats[f"{name}_std"], stats[f"{name}_count"])
        stats[f"{name}_ci_lo"], stats[f"{name}_ci_hi"] = lo, hi
    for name in diffs:
        stats[f"{name}_n"] = stats.pop(f"{name}_count").where(lambda c: c > 0)
    ordered = [f"{m}_{s}" for m in metrics for s in ("mean", "std", "count", "ci_lo", "ci_hi")
               + sum(((f"{kind}_mean", f"{kind}_std", f"{kind}_n", f"{kind}_ci_lo", f"{kind}_ci_hi")
                      for kind in ("diff", "rise") if f"{m}_{kind}" in diffs), ())]
    return stats[ordered]


def aggregate(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per group of finished runs: its keys, `n_runs`, and per metric `<m>_mean`, `<m>_std`, `<m>_count`,
    `<m>_ci_lo`, `<m>_ci_hi`; for utility metrics of private groups the same of the paired difference
    (`<m>_diff_mean`, `_diff_std`, `_diff_n`, `_diff_ci_lo`, `_diff_ci_hi`), and of the paired difference to the
    same mechanism at the next lower epsilon (`<m>_rise_*`)."""
    done = normalise_unused(runs[runs["status"] == FINISHED])
    keys = group_keys(done)
    done = drop_repeats(done, keys)
    utility = [m for m in metrics if m not in BUDGETS]
    diffs = pd.concat([paired_differences(done, utility), rise_differences(done, utility)], axis=1)
    info = [c for c in INFO_COLUMNS if c in done]
    table = pd.concat([done[keys + metrics + info], diffs], axis=1)
    # groupby drops NaN keys unless asked not to; `none` has epsilon NaN and must stay a group
    for key in keys:
        table[key] = table[key].astype(object).where(table[key].notna(), None)
    grouped = table.groupby(keys, dropna=False, sort=False) if keys else table.groupby(np.zeros(len(table)))
    values = metrics + list(diffs.columns)
    stats = grouped[values].agg(["mean", "std", "count"]) if values else pd.DataFrame(index=grouped.size().index)
    stats.columns = [f"{m}_{s}" for m, s in stats.columns] if values else []
    stats = _with_intervals(stats, metrics, list(diffs.columns))
    stats.insert(0, N_RUNS, grouped.size())
    for col in info:
        stats.insert(0, col, grouped[col].first())
    _warn_few_seeds(stats[N_RUNS])
    paired = [d for d in diffs.columns if d.endswith("_diff")]
    if paired:
        _warn_unpaired(stats, paired, stats.index.get_level_values(PRIVACY_NAME) != NONPRIVATE)
    summary = stats.reset_index(drop=not keys)
    summary = summary.rename(columns={k: label(k) for k in keys})
    return sort_summary(summary, [label(k) for k in keys])


def sort_summary(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Order groups by their keys, numbers numerically, with missing values (the references) first."""
    if not keys:
        return summary.reset_index(drop=True)
    order = summary[keys].copy()
    for key in keys:
        numeric = pd.to_numeric(order[key], errors="coerce")
        order[key] = numeric.fillna(-np.inf) if numeric.notna().sum() == order[key].notna().sum() \
            else order[key].astype(str)
    index = order.sort_values(keys, kind="stable").index
    return summary.loc[index].reset_index(drop=True)
