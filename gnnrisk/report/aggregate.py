"""Group runs that differ only by seed: mean, unbiased std (ddof=1) and count of every metric."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from gnnrisk.report.collect import CONFIG_PREFIX, FINISHED, ReportWarning

SEED_KEY = CONFIG_PREFIX + "seed"
# Config values the run did not use: a non-private run (`privacy=none`) has no privacy parameters,
# so a sweep that crosses `none` with an epsilon axis repeats the same run; those collapse into one group.
PRIVACY_PARAMS = CONFIG_PREFIX + "privacy."
PRIVACY_NAME = CONFIG_PREFIX + "privacy.name"
# Config keys that never define a group: bookkeeping, not part of the experiment.
IGNORED_KEYS = (SEED_KEY, CONFIG_PREFIX + "skip_finished")
# Copies of the run's own groups inside a stage's config (`attack.target` interpolates privacy, model,
# train): never a key of their own, so that tables say `privacy.name`, not `attack.target.privacy.name`.
MIRRORED_PREFIXES = (CONFIG_PREFIX + "attack.target.",)
N_RUNS = "n_runs"
# Text facts of a group shown next to its keys: which neighbouring relation its epsilon is about.
INFO_COLUMNS = ("privacy_unit",)


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
    """Keys a reader looks for in a table (a component's name, the privacy budget): kept when redundant ones go."""
    return key.endswith(".name") or key in (CONFIG_PREFIX + "privacy.epsilon", CONFIG_PREFIX + "privacy.delta")


def group_keys(runs: pd.DataFrame) -> list[str]:
    """Config columns whose value differs between runs (seed aside), without those the others determine.

    Every mechanism brings its own parameters (`privacy.max_degree`, ...): they vary across a sweep but
    follow from `privacy.name`, so they would only widen the table. A secondary key (not a name or budget) is dropped when runs that agree
    on all other keys always agree on it too; the groups stay the same.
    """
    cols = [c for c in runs.columns if c.startswith(CONFIG_PREFIX) and c not in IGNORED_KEYS
            and not c.startswith(MIRRORED_PREFIXES)]
    text = runs[cols].astype(str)
    keys = [c for c in cols if text[c].nunique() > 1]
    for key in [k for k in keys if not _is_primary(k)]:  # names and budgets always stay: readers look for them
        rest = [k for k in keys if k != key]
        if rest and (text.groupby(rest)[key].nunique() <= 1).all():
            keys = rest
    return sorted(keys, key=lambda k: not k.endswith(".name"))  # names first, then the order of the config


def drop_repeats(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Keep one run per (group, seed): repeats would inflate the count and shrink the std."""
    ident = runs[keys + [SEED_KEY]].astype(str) if SEED_KEY in runs else runs[keys].astype(str)
    repeated = ident.duplicated(keep="first")
    if repeated.any():
        warnings.warn(f"{int(repeated.sum())} run(s) repeat another run (same seed, same config apart from "
                      f"parameters their mechanism ignores, e.g. `none` crossed with an epsilon axis): each seed "
                      f"counted once; repeats: "
                      f"{', '.join(runs.loc[repeated, 'run'].head(4))}", ReportWarning, stacklevel=2)
    return runs.loc[~repeated]


def aggregate(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per group of finished runs: its keys, `n_runs`, and `<m>_mean`, `<m>_std`, `<m>_count` per metric."""
    done = normalise_unused(runs[runs["status"] == FINISHED])
    keys = group_keys(done)
    done = drop_repeats(done, keys)
    info = [c for c in INFO_COLUMNS if c in done]
    table = done[keys + metrics + info].copy()
    # groupby drops NaN keys unless asked not to; `none` has epsilon NaN and must stay a group
    for key in keys:
        table[key] = table[key].astype(object).where(table[key].notna(), None)
    grouped = table.groupby(keys, dropna=False, sort=False) if keys else table.groupby(np.zeros(len(table)))
    stats = grouped[metrics].agg(["mean", "std", "count"]) if metrics else pd.DataFrame(index=grouped.size().index)
    stats.columns = [f"{m}_{s}" for m, s in stats.columns] if metrics else []
    stats.insert(0, N_RUNS, grouped.size())
    for col in info:
        stats.insert(0, col, grouped[col].first())
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
