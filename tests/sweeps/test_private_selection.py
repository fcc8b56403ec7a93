"""Private hyperparameter selection (Papernot & Steinke, ICLR 2022): the bound, the law of K, the sweeper's checks."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution
from scipy import stats

from gnnrisk import private_selection as ps
from gnnrisk.errors import ConfigError
from gnnrisk.privacy import accounting as acc
from sweep_helpers import env, experiment_override, metrics_files, run_sweep, sweep_command

GEOMETRIC = {"distribution": "truncated_negative_binomial", "eta": 1, "gamma": 0.1}   # E[K] = 10


def _spec(**fields) -> ps.PrivateSelection:
    return ps.PrivateSelection.from_settings(fields)


# --- the bound ----------------------------------------------------------------------------------------------


def test_theorem_2_matches_the_formula_computed_by_hand():
    """Gaussian sigma = 1 (eps_a = a/2) on orders 2, 4, 8, eta = 1, gamma = 0.1 (E[K] = 0.9/(0.1*0.9) = 10):
    lambda_hat = 2 minimises (1+eta)((1-1/l) l/2 + log(10)/l): 2 (0.5 + log(10)/2) = 1 + log 10."""
    orders = (2.0, 4.0, 8.0)
    curve = np.array([1.0, 2.0, 4.0])
    c = 2 * (0.5 + math.log(10) / 2)
    assert c < 2 * (1.5 + math.log(10) / 4) and c < 2 * (3.5 + math.log(10) / 8)
    raw = [1.0 + c + math.log(10) / 1, 2.0 + c + math.log(10) / 3, 4.0 + c + math.log(10) / 7]
    assert raw == pytest.approx([6.6052, 6.0701, 7.6315], abs=1e-4)
    out = ps.rdp_tnb_selection(curve, eta=1.0, gamma=0.1, orders=orders)
    assert out == pytest.approx([min(raw[0], raw[1]), raw[1], raw[2]], rel=1e-12)  # RDP is monotone in the order

    # the logarithmic distribution (eta = 0): E[K] = (1/gamma - 1)/log(1/gamma); gamma = 0.25: 3/log 4
    assert ps.expected_trials(0.0, 0.25) == pytest.approx(3 / math.log(4))
    out0 = ps.rdp_tnb_selection(curve, eta=0.0, gamma=0.25, orders=orders)
    c0 = min((1 - 1 / a) * e + math.log(4) / a for a, e in zip(orders, curve))
    assert out0[2] == pytest.approx(4.0 + c0 + math.log(3 / math.log(4)) / 7, rel=1e-12)
    # eta = 2, gamma = 0.5: E[K] = 2 * 0.5 / (0.5 * 0.75) = 8/3
    assert ps.expected_trials(2.0, 0.5) == pytest.approx(8 / 3)


def test_theorem_6_poisson_matches_the_formula_computed_by_hand():
    """eps' = eps_l + mu delta_hat + log(mu)/(l-1), delta_hat at eps_hat = log(1 + 1/(l-1)) from the curve."""
    orders, curve, mu = (2.0, 4.0), np.array([0.05, 0.1]), 3.0

    def delta_at(eps_hat: float) -> float:
        logs = [min(0.5 * math.log1p(-math.exp(-r)), (a - 1) * (r - eps_hat + math.log(1 - 1 / a)) - math.log(a))
                for a, r in zip(orders, curve)]
        return math.exp(min(logs))

    raw = [r + mu * delta_at(math.log(1 + 1 / (a - 1))) + math.log(mu) / (a - 1) for a, r in zip(orders, curve)]
    out = ps.rdp_poisson_selection(curve, mu, orders)
    assert out == pytest.approx([min(raw), raw[1]], rel=1e-12)


def test_the_bound_agrees_with_dp_accounting():
    """Google's dp_accounting implements both theorems (RepeatAndSelectDpEvent): the same RDP and epsilon."""
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant as rdp

    orders = list(acc.ORDERS)
    for sigma in (0.8, 1.0, 3.0):
        curve = acc.rdp_gaussian(sigma, 1.0, orders=orders)
        for eta, gamma in ((1.0, 0.1), (0.0, 0.05), (0.5, 0.3), (3.0, 0.02)):
            spec = _spec(eta=eta, gamma=gamma)
            theirs = rdp._compute_rdp_repeat_and_select(orders, curve, spec.mean, eta)
            # dp_accounting solves gamma from the mean by bisection (relative tolerance 1e-9)
            assert ps.selection_rdp(curve, spec) == pytest.approx(theirs, rel=1e-8)
            accountant = rdp.RdpAccountant(orders)
            accountant.compose(dp_event.RepeatAndSelectDpEvent(dp_event.GaussianDpEvent(sigma), spec.mean, eta))
            assert ps.selection_epsilon(curve, spec, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-6)
        poisson = _spec(distribution="poisson", mean=10)
        theirs = np.asarray(rdp._compute_rdp_repeat_and_select(orders, curve, 10.0, np.inf))
        theirs = np.minimum.accumulate(theirs[::-1])[::-1]  # gnnrisk also applies monotonicity in the order here
        assert ps.selection_rdp(curve, poisson) == pytest.approx(theirs, rel=1e-9)
        assert ps.delta_from_rdp(curve, 1.0) == pytest.approx(rdp.compute_delta(orders, curve, 1.0)[0], rel=1e-9)


def test_gaussian_sigma_1_geometric_gamma_0_1_at_delta_1e_5():
    """The reported example: one trial epsilon 4.73; best of K ~ Geometric(0.1) (E[K] = 10): 8.51 (dp_accounting
    gives the same), against 10 trials by RDP composition."""
    curve = acc.rdp_gaussian(1.0, 1.0)
    one = acc.epsilon_from_rdp(curve, 1e-5)
    tuned = ps.selection_epsilon(curve, _spec(**GEOMETRIC), 1e-5)
    ten = acc.epsilon_from_rdp(10 * curve, 1e-5)
    assert one == pytest.approx(4.7285, abs=1e-4) and tuned == pytest.approx(8.5145, abs=1e-4)
    assert one < tuned < ten


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0, 5.0])
def test_selection_costs_at_least_one_trial_and_grows_with_the_expected_trials(sigma):
    curve = acc.rdp_gaussian(sigma, 1.0)
    one = acc.epsilon_from_rdp(curve, 1e-5)
    for eta in (-0.5, 0.0, 1.0, 3.0):
        eps = [ps.selection_epsilon(curve, _spec(eta=eta, mean=m), 1e-5) for m in (1.5, 3, 10, 100, 1000)]
        assert eps[0] >= one and all(a < b for a, b in zip(eps, eps[1:])), (eta, eps)
    poisson = [ps.selection_epsilon(curve, _spec(distribution="poisson", mean=m), 1e-5) for m in (2, 10, 100)]
    assert poisson[0] >= one and poisson[0] < poisson[1] < poisson[2]


def test_pure_dp_trials_use_corollary_3():
    """A pure eps-DP trial: the selection is ((2+eta) eps, 0)-DP; its RDP curve is min(eps, a eps^2/2)."""
    assert ps.pure_tnb_epsilon(1.5, 1.0) == 4.5
    assert ps.pure_dp_rdp(2.0, (1.5, 100.0)) == pytest.approx([2.0, 2.0])
    assert ps.pure_dp_rdp(0.1, (2.0,)) == pytest.approx([0.01])
    release = {"mechanism": "edgerand", "privacy_unit": "edge", "epsilon": 1.5, "delta": 0.0}
    out = ps.private_selection_fields(_spec(**GEOMETRIC), [release, release])
    assert out["selection_epsilon"] == 4.5 and out["selection_delta"] == 0.0
    assert "Corollary 3" in out["selection_theorem"]
    poisson = ps.private_selection_fields(_spec(distribution="poisson", mean=5), [release])
    assert poisson["selection_epsilon"] is None and "private_selection.delta" in poisson["selection_note"]
    at_delta = ps.private_selection_fields(_spec(distribution="poisson", mean=5, delta=1e-6), [release])
    assert at_delta["selection_epsilon"] > at_delta["selection_epsilon_trial"] and at_delta["selection_delta"] == 1e-6


# --- the law of K -------------------------------------------------------------------------------------------

LAWS = [(1.0, 0.1), (0.0, 0.2), (-0.5, 0.3), (3.0, 0.4), (0.5, 0.05)]


@pytest.mark.parametrize("eta,gamma", LAWS)
def test_expected_trials_matches_the_pmf_and_monte_carlo(eta, gamma):
    pmf = ps.tnb_pmf(eta, gamma, 20000)
    k = np.arange(1, pmf.size + 1)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (pmf * k).sum() == pytest.approx(ps.expected_trials(eta, gamma), rel=1e-9)
    spec = _spec(eta=eta, gamma=gamma)
    rng = np.random.default_rng(12345)
    draws = np.array([spec.draw(rng) for _ in range(20000)])
    assert draws.min() >= 1
    se = draws.std() / math.sqrt(draws.size)
    assert abs(draws.mean() - spec.mean) < 4 * se, (draws.mean(), spec.mean, se)
    assert _spec(eta=eta, mean=spec.mean).gamma == pytest.approx(gamma, rel=1e-9)  # mean -> gamma inverts E[K]


def _chi_square_p(draws: np.ndarray, pmf: np.ndarray) -> float:
    """Chi-square goodness of fit of draws on {1, 2, ...} to pmf[k-1], bins with >= 5 expected, the tail pooled."""
    n = draws.size
    expected, observed, k = [], [], 1
    while k <= pmf.size and n * pmf[k - 1] >= 5 and n * (1 - pmf[:k].sum()) >= 5:
        expected.append(n * pmf[k - 1])
        observed.append(int((draws == k).sum()))
        k += 1
    expected.append(n - sum(expected))
    observed.append(int((draws >= k).sum()))
    return float(stats.chisquare(observed, expected).pvalue)


@pytest.mark.parametrize("eta,gamma", LAWS)
def test_sampler_follows_the_truncated_negative_binomial(eta, gamma):
    """5000 seeded draws against Definition 1's pmf: the fit is not rejected; against a neighbouring law
    (eta + 1, same gamma) it is, so the test has the power to fail."""
    rng = np.random.default_rng(2022)
    spec = _spec(eta=eta, gamma=gamma)
    draws = np.array([spec.draw(rng) for _ in range(5000)])
    assert _chi_square_p(draws, ps.tnb_pmf(eta, gamma, 5000)) > 1e-3
    assert _chi_square_p(draws, ps.tnb_pmf(eta + 1.0, gamma, 5000)) < 1e-6


def test_poisson_sampler_and_seeded_draws():
    rng = np.random.default_rng(7)
    spec = _spec(distribution="poisson", mean=4)
    draws = np.array([spec.draw(rng) for _ in range(5000)])
    pmf = stats.poisson(4).pmf(np.arange(0, 60))
    observed = [int((draws == k).sum()) for k in range(0, 12)] + [int((draws >= 12).sum())]
    expected = list(5000 * pmf[:12]) + [5000 * (1 - pmf[:12].sum())]
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    seeded = _spec(eta=1, gamma=0.5, seed=5)
    assert seeded.draw() == seeded.draw()                        # a seed makes K reproducible
    assert len({_spec(eta=1, gamma=0.01).draw() for _ in range(20)}) > 1   # no seed: fresh entropy


# --- the setting and the sweeper's checks -------------------------------------------------------------------


@pytest.mark.parametrize("fields,field", [
    ({"gamma": 0.0}, "gamma"), ({"gamma": 1.0}, "gamma"), ({"gamma": 1.5}, "gamma"), ({"gamma": -0.1}, "gamma"),
    ({"eta": -1, "gamma": 0.1}, "eta"), ({"eta": -2.5, "gamma": 0.1}, "eta"),
    ({"eta": float("inf"), "gamma": 0.1}, "eta"),
    ({"eta": float("nan"), "gamma": 0.1}, "eta"), ({"eta": "one", "gamma": 0.1}, "eta"),
    ({"gamma": 0.1, "mean": 10}, "gamma"), ({"eta": 1}, "gamma"), ({"mean": 1.0}, "mean"),
    ({"distribution": "uniform", "mean": 3}, "distribution"), ({"gamma": 0.1, "n": 3}, "n"),
    ({"distribution": "poisson", "mean": 0}, "mean"), ({"distribution": "poisson", "mean": 5, "eta": 1}, "eta"),
    ({"gamma": 0.1, "delta": 0}, "delta"), ({"gamma": 0.1, "delta": 1}, "delta"), ({"gamma": 0.1, "seed": -1}, "seed"),
    ({"gamma": 0.1, "score_noise": 0}, "score_noise"), ({"gamma": 0.1, "score_noise": float("inf")}, "score_noise"),
    ({"gamma": 0.1, "score_noise": "five"}, "score_noise"),
    ({"eta": -0.99, "mean": 1e12}, "mean"), ({"eta": 1, "gamma": 1e-12}, "gamma"),
])
def test_bad_settings_are_refused_in_one_line_naming_the_field(fields, field):
    with pytest.raises(ConfigError) as err:
        ps.PrivateSelection.from_settings(fields)
    assert str(err.value).startswith(f"hydra.sweeper.private_selection.{field}=") and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.private_selection="):
        ps.PrivateSelection.from_settings([1, 2])
    assert ps.PrivateSelection.from_settings(None) is None


def test_mechanism_tables_match_the_registry():
    """private_selection's static table (kept free of torch) agrees with the mechanism classes."""
    import importlib

    from gnnrisk.privacy import MECHANISMS

    def unit(name: str):
        module, cls = MECHANISMS[name].split(":")
        return getattr(importlib.import_module(module), cls).privacy_unit

    assert all(unit(n) == a.unit for n, a in ps.ACCOUNTING.items())
    edge = {n for n, a in ps.ACCOUNTING.items() if a.unit == "edge"}
    assert edge == {"gap_edp", "progap_edp", "edgerand", "lapgraph"}


def _cfg(name: str, epsilon=4.0):
    return OmegaConf.create({"privacy": {"name": name, "epsilon": epsilon}, "data": {"name": "synthetic"}})


@pytest.mark.parametrize("sampled,configs,sampler,field", [
    ({}, [_cfg("gap_edp")], optuna.samplers.TPESampler(seed=0), "hydra.sweeper.sampler"),
    ({}, [_cfg("gap_ndp", 8.0)], None, "hydra.sweeper.private_selection.score_noise"),
    ({}, [_cfg("dpsgd_node", 8.0)], None, "hydra.sweeper.private_selection.score_noise"),
    ({}, [_cfg("dpdgc_edp", 8.0)], None, "privacy"),
    ({}, [_cfg("none", None)], None, "privacy"),
    ({}, [_cfg("gap_edp", float("inf"))], None, "privacy.epsilon"),
    ({"privacy.hops": CategoricalDistribution([1, 2])}, [_cfg("gap_edp")], None, "privacy.hops"),
    ({"privacy.epsilon": FloatDistribution(1, 4)}, [_cfg("edgerand")], None, "privacy.epsilon"),
    ({"data.num_nodes": CategoricalDistribution([100, 150])}, [_cfg("gap_edp")], None, "data.num_nodes"),
    ({"seed": CategoricalDistribution([0, 1])}, [_cfg("gap_edp")], None, "seed"),
    ({"privacy": CategoricalDistribution(["gap_edp", "edgerand"])}, [_cfg("gap_edp")], None, "privacy"),
])
def test_studies_outside_the_theorem_are_refused(sampled, configs, sampler, field):
    sampler = sampler or optuna.samplers.RandomSampler(seed=0)
    with pytest.raises(ConfigError) as err:
        ps.check_plan(_spec(**GEOMETRIC), sampled, configs, sampler)
    assert str(err.value).startswith(f"{field}=")
    ps.check_plan(_spec(**GEOMETRIC), {"train.lr": FloatDistribution(1e-3, 1e-1)}, [_cfg("gap_edp")],
                  optuna.samplers.RandomSampler(seed=0))   # random search over train.* is fine


# --- the trials' curves and best.json -------------------------------------------------------------------------


def _gap_edp_release(z: float = 1.3, hops: int = 2, delta: float = 1e-4) -> dict:
    from gnnrisk.privacy.gap import edp_epsilon

    return {"mechanism": "gap_edp", "privacy_unit": "edge", "epsilon": edp_epsilon(z, hops, delta), "delta": delta,
            "noise_multiplier": z, "hops": hops}


def test_trial_curves_are_rebuilt_and_checked_against_the_reported_epsilon():
    release = _gap_edp_release()
    trial, why = ps.trial_rdp_curve(release)
    assert why is None and trial.curve == pytest.approx(acc.rdp_gaussian(1.3, 1.0, steps=2))
    assert trial.sensitivity is None and trial.orders == acc.ORDERS
    assert ps.trial_rdp_curve({**release, "epsilon": release["epsilon"] * 0.9})[1].startswith("gap_edp's rebuilt")
    assert "lacks" in ps.trial_rdp_curve({k: v for k, v in release.items() if k != "hops"})[1]
    assert "lacks" in ps.trial_rdp_curve({"mechanism": "dpsgd_node", "epsilon": 3.0, "delta": 1e-5})[1]
    assert "cannot be rebuilt" in ps.trial_rdp_curve({"mechanism": "dpdgc_edp", "epsilon": 3.0, "delta": 1e-5})[1]
    assert "non-private" in ps.trial_rdp_curve({"mechanism": "none", "epsilon": None})[1]


def test_best_json_fields_of_a_private_selection():
    release = _gap_edp_release()
    out = ps.private_selection_fields(_spec(**GEOMETRIC), [release, release, release])
    curve = acc.rdp_gaussian(1.3, 1.0, steps=2)
    assert out["selection_epsilon_trial"] == pytest.approx(release["epsilon"], rel=1e-9)
    assert out["selection_epsilon"] == pytest.approx(ps.selection_epsilon(curve, _spec(**GEOMETRIC), 1e-4))
    assert out["selection_epsilon"] > release["epsilon"] and out["selection_delta"] == 1e-4
    assert out["selection_expected_trials"] == pytest.approx(10) and "Theorem 2" in out["selection_theorem"]
    at = ps.private_selection_fields(_spec(**GEOMETRIC, delta=1e-6), [release])
    assert at["selection_delta"] == 1e-6 and at["selection_epsilon"] > out["selection_epsilon"]
    differ = ps.private_selection_fields(_spec(**GEOMETRIC), [release, _gap_edp_release(z=2.0)])
    assert differ["selection_epsilon"] is None and "curves differ" in differ["selection_note"]
    node = {**release, "privacy_unit": "node"}
    assert ps.private_selection_fields(_spec(**GEOMETRIC), [node])["selection_epsilon"] is None
    nothing = ps.private_selection_fields(_spec(**GEOMETRIC), [])
    assert nothing["selection_epsilon"] is None and "nothing is selected" in nothing["selection_note"]


def test_k_is_drawn_once_kept_in_the_journal_and_a_changed_setting_is_refused(tmp_path: Path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j")))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    spec = _spec(eta=1, gamma=0.05)        # unseeded: fresh entropy, so only the journal can give K back
    k = ps.drawn_trials(study, spec)
    again = optuna.load_study(storage=storage, study_name="s")
    assert all(ps.drawn_trials(again, spec) == k for _ in range(5))
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.private_selection="):
        ps.drawn_trials(again, _spec(eta=1, gamma=0.5))
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.private_selection=None"):
        ps.drawn_trials(again, None)
    plain = optuna.create_study(direction="maximize")
    plain.enqueue_trial({})
    plain.ask()
    with pytest.raises(ConfigError, match="without private selection"):
        ps.drawn_trials(plain, spec)


# --- real studies -------------------------------------------------------------------------------------------

TINY = ["data.num_nodes=150", "train.epochs=2", "threads=1", "device=cpu"]
RANDOM = ["hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler", "~hydra.sweeper.sampler.n_startup_trials"]
STUDY = [experiment_override("tune"), *TINY, *RANDOM, "privacy=gap_edp", "privacy.epsilon=2"]


@pytest.mark.slow
def test_private_edge_level_study_runs_k_trials_and_reports_the_total_epsilon(tmp_path: Path):
    """gap_edp, K ~ Geometric(0.5) with seed 5 (K = 3): three runs, best.json's total epsilon is Theorem 2's
    at the runs' delta, above one run's and below basic composition; the report says so; a re-run adds nothing."""
    from gnnrisk.report.build import make_report

    sweep = tmp_path / "study"
    sweep.mkdir()
    setting = "hydra.sweeper.private_selection={eta:1,gamma:0.5,seed:5}"
    run_sweep(sweep, *STUDY, setting)
    metrics = metrics_files(sweep)
    best = json.loads((sweep / "tuning" / "best.json").read_text())
    k = _spec(eta=1, gamma=0.5, seed=5).draw()
    assert len(metrics) == k == best["n_trials"] == best["trials_complete"] == 3
    assert len({m["noise_seed"] for m in metrics.values()}) == 3 and all(m["seed"] == 0 for m in metrics.values())
    run = metrics[best["best_run_dir"]]
    curve = acc.rdp_gaussian(run["noise_multiplier"], 1.0, steps=run["hops"])
    assert best["selection_epsilon"] == pytest.approx(
        ps.selection_epsilon(curve, _spec(eta=1, gamma=0.5), run["delta"]), rel=1e-9)
    assert run["epsilon"] < best["selection_epsilon"] < best["selection_epsilon_upper"]
    assert best["selection_delta"] == run["delta"]
    assert best["selection_theorem"].endswith("Theorem 2 (truncated negative binomial)")
    report = make_report(sweep, tmp_path / "report", metrics=["val_auroc"])
    assert any(n.startswith("PRIVATE HYPERPARAMETER SELECTION") for n in report.notes)
    again = run_sweep(sweep, *STUDY, setting)
    assert "Launching" not in again.stdout + again.stderr and len(metrics_files(sweep)) == 3


@pytest.mark.parametrize("extra,field", [
    (["hydra.sweeper.private_selection={eta:1,gamma:1.5}"], "hydra.sweeper.private_selection.gamma"),
    (["hydra.sweeper.private_selection={eta:-1,gamma:0.5}"], "hydra.sweeper.private_selection.eta"),
    (["hydra.sweeper.private_selection={gamma:0.5}", "privacy=gap_ndp"], "hydra.sweeper.private_selection.score_noise"),
    (["hydra.sweeper.private_selection={gamma:0.5,score_noise:3}", "privacy=gap_ndp"], "eval.objective"),
    (["hydra.sweeper.private_selection={gamma:0.5}", "noise_seed=4"], "noise_seed"),
    (["hydra.sweeper.private_selection={gamma:0.5}", "hydra.sweeper.sampler._target_=optuna.samplers.TPESampler"],
     "hydra.sweeper.sampler"),
])
@pytest.mark.slow
def test_refused_in_one_line_before_any_trial(extra, field, tmp_path: Path):
    sweep = tmp_path / "study"
    proc = subprocess.run(sweep_command(sweep, *STUDY, *extra), cwd=tmp_path, env=env(), capture_output=True,
                          text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"gnnrisk: error: {field}="), lines
    assert not sweep.exists()
