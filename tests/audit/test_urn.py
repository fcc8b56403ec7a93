"""Ensign et al.'s Polya urn: the runaway without correction, the surprise correction, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gnnrisk.audit.urn import (
    OAKLAND,
    STRATEGIES,
    UrnSetting,
    check_setting,
    mixed_fixed_point,
    simulate_urn,
    summarise_urn,
    true_shares,
)
from gnnrisk.errors import ConfigError, ConfigErrors

SETTING = replace(OAKLAND, runs=500)  # the paper's Oakland setting (1000 days, decay 0.01), fewer runs
TRUTH = 3.68511 / (3.68511 + 2.816466)  # 0.5668
Z = 4.0  # a correct urn leaves mean +- 4 SE with probability 6e-5 (plus the bias noted where tested)


@pytest.fixture(scope="module")
def finals() -> dict[str, np.ndarray]:
    """Region A's final share in each run, per strategy, for the test setting (seed 0)."""
    return {s: simulate_urn(s, SETTING, seed=0)[-1, :, 0] for s in STRATEGIES}


def test_shapes_rows_and_prior() -> None:
    """(days + 1, runs, regions); each row a distribution; row 0 the prior's shares."""
    shares = simulate_urn("mixed", replace(OAKLAND, days=30, runs=7), seed=3)
    assert shares.shape == (31, 7, 2)
    np.testing.assert_allclose(shares.sum(axis=2), 1.0)
    assert (shares > 0).all() and (shares < 1).all()
    np.testing.assert_allclose(shares[0], np.tile([609 / 988, 379 / 988], (7, 1)))


def test_same_seed_same_output_other_seed_differs() -> None:
    """The seed alone fixes a run set."""
    small = replace(OAKLAND, days=200, runs=50)
    for strategy in STRATEGIES:
        a, b = simulate_urn(strategy, small, seed=11), simulate_urn(strategy, small, seed=11)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, simulate_urn(strategy, small, seed=12))


def test_uncorrected_urn_runs_away(finals: dict[str, np.ndarray]) -> None:
    """Without correction almost no run ends where 90% of corrected runs end, most pass 0.9."""
    none, corrected = finals["none"], finals["surprise"]
    lo, hi = np.quantile(corrected, [0.05, 0.95])  # about 0.49 to 0.65 around the true 0.567
    assert lo < TRUTH < hi
    # measured over 20,000 runs: 99.8% outside, 77% above 0.9, mean 0.932
    assert ((none < lo) | (none > hi)).mean() > 0.9
    summary = summarise_urn(simulate_urn("none", SETTING, seed=0), OAKLAND.rates)
    assert summary["runaway_any"] > 0.5
    assert summary["mean"] > TRUTH + 0.2


@pytest.mark.parametrize("strategy", ["surprise", "surprise_linear", "mixed_surprise"])
def test_corrected_urn_tracks_the_true_share(finals: dict[str, np.ndarray], strategy: str) -> None:
    """The mean final share is within Z standard errors (over runs) of 3.68511 / (3.68511 + 2.816466).

    A finite urn is slightly biased: the day's total gain is proportional to the smaller share, so the
    urn's size and B's share covary and A's mean share sits above the counts' ratio; measured over
    20,000 runs: +0.0022 (surprise, SE 0.00035), +0.0000 (mixed_surprise): under 1 SE at 500 runs.
    """
    x = finals[strategy]
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert abs(x.mean() - TRUTH) <= Z * se, (x.mean(), se)
    assert (x > 0.9).mean() == 0.0


def test_two_region_surprise_forms_agree(finals: dict[str, np.ndarray]) -> None:
    """With two regions min(share) / share_k equals (1 - share_k) / max(1 - share): the same runs."""
    np.testing.assert_allclose(finals["surprise"], finals["surprise_linear"])


def test_uncorrected_mixed_urn_stays_at_its_biased_fixed_point(finals: dict[str, np.ndarray]) -> None:
    """Reported crime holds the urn near the quadratic's root (0.5989), above the truth, not at it."""
    x = finals["mixed"]
    se = x.std(ddof=1) / np.sqrt(len(x))
    target = mixed_fixed_point(OAKLAND.rates, OAKLAND.discovered_weight)
    assert target == pytest.approx(0.5989, abs=1e-4)
    assert abs(x.mean() - target) <= Z * se  # measured over 20,000 runs: 0.5985 (SE 0.0002)
    assert x.mean() - TRUTH > Z * se


def test_more_discovered_crime_moves_the_mixed_urn_further_from_the_truth() -> None:
    """At discovered weight 0.8 the urn sits at that weight's root (0.6826); the correction undoes it.

    Measured over 6,000 runs: mixed 0.6792 (SE 0.0006; a finite-urn bias of -0.003, 1 SE at 300 runs),
    mixed_surprise 0.5678 (SE 0.0005).
    """
    setting = replace(SETTING, discovered_weight=0.8, runs=300)
    target = mixed_fixed_point(setting.rates, 0.8)
    for strategy, expected in (("mixed", target), ("mixed_surprise", TRUTH)):
        x = simulate_urn(strategy, setting, seed=0)[-1, :, 0]
        assert abs(x.mean() - expected) <= Z * x.std(ddof=1) / np.sqrt(len(x)), (strategy, x.mean(), expected)


def test_three_regions_surprise_recovers_rates_linear_form_does_not() -> None:
    """With three regions the inverse-share form recovers the rate shares; their linear form does not.

    Decay 0.001 keeps the urn large, so its finite-urn bias (about -0.001 for the smallest region,
    measured over 1,600 runs) stays near 1 SE; 5000 days let it forget the prior (time scale 1000).
    """
    setting = UrnSetting(rates=(3.0, 2.0, 1.0), prior=(20.0, 50.0, 30.0), days=5000, runs=400, decay=0.001)
    final = simulate_urn("surprise", setting, seed=0)[-1]
    se = final.std(axis=0, ddof=1) / np.sqrt(setting.runs)
    assert (np.abs(final.mean(axis=0) - true_shares(setting.rates)) <= Z * se).all()
    linear = simulate_urn("surprise_linear", replace(setting, days=1000, decay=0.01), seed=0)[-1]
    assert linear[:, 2].mean() < 0.1  # measured 0.027 against the true 1/6


def test_mixed_fixed_point_limits() -> None:
    """No discovered crime: the truth; all discovered: the plain urn's runaway to the higher rate."""
    assert mixed_fixed_point((3.0, 1.0), 0.0) == pytest.approx(0.75)
    assert mixed_fixed_point((3.0, 1.0), 1.0) == 1.0
    assert mixed_fixed_point((1.0, 3.0), 1.0) == 0.0
    assert mixed_fixed_point((2.0, 2.0), 0.7) == pytest.approx(0.5)


def test_summary_counts_runaways() -> None:
    """Runaway counts any region past the threshold; the quantiles and SE are region A's."""
    final = np.array([[0.95, 0.05], [0.5, 0.5], [0.02, 0.98], [0.6, 0.4]])
    s = summarise_urn(np.stack([final, final]), (1.0, 1.0))
    assert s["runaway_any"] == 0.5 and s["runaway_region"] == 0.25
    assert s["true_share"] == 0.5 and s["runs"] == 4
    assert s["mean"] == pytest.approx(final[:, 0].mean())
    assert s["se"] == pytest.approx(final[:, 0].std(ddof=1) / 2)


@pytest.mark.parametrize("change, field", [
    ({"rates": (1.0,)}, "urn.rates"),
    ({"rates": (-1.0, 2.0)}, "urn.rates[0]"),
    ({"rates": (1.0, float("nan"))}, "urn.rates[1]"),
    ({"rates": (0.0, 0.0)}, "urn.rates"),
    ({"prior": (609.0, 379.0, 1.0)}, "urn.prior"),
    ({"prior": (609.0, 0.0)}, "urn.prior[1]"),
    ({"prior": (float("inf"), 1.0)}, "urn.prior[0]"),
    ({"days": 0}, "urn.days"),
    ({"runs": 2.5}, "urn.runs"),
    ({"decay": 1.0}, "urn.decay"),
    ({"discovered_weight": 1.5}, "urn.discovered_weight"),
])
def test_bad_settings_raise_config_error_naming_the_field(change: dict, field: str) -> None:
    """Each refused setting names its field."""
    with pytest.raises(ConfigError) as err:
        simulate_urn("none", replace(OAKLAND, **change))
    assert err.value.field == field


def test_bad_strategy_and_several_fields_at_once() -> None:
    """An unknown strategy is refused by name; several bad fields are reported together."""
    with pytest.raises(ConfigError, match="urn.strategy"):
        simulate_urn("ipw")
    with pytest.raises(ConfigErrors) as err:
        check_setting(replace(OAKLAND, days=-1, decay=2.0))
    assert [e.field for e in err.value.errors] == ["urn.days", "urn.decay"]
    with pytest.raises(ConfigError, match="region"):
        summarise_urn(simulate_urn("none", replace(OAKLAND, days=2, runs=3)), OAKLAND.rates, region=2)
