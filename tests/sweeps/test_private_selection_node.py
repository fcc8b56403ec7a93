"""Independent noise per trial (`noise_seed`) and node-level private selection (a noisy validation count)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution

from gnnrisk import private_selection as ps
from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import check_noise_seed, execute_experiment, prepare_run
from gnnrisk.privacy import accounting as acc
from gnnrisk.tuning import NOISE_SEED_ATTR, RETRY_ATTR, recover_interrupted
from sweep_helpers import CONFIG_DIR, experiment_override, metrics_files, run_sweep

SMALL = ["data.num_nodes=300", "threads=1", "device=cpu", "train.epochs=2"]
DP_MLP = ["privacy=dp_mlp", "model=mlp", "privacy.batch_size=32", "privacy.epochs=2"]
NODE_RUNS = {
    "dp_mlp": DP_MLP,
    "gap_ndp": ["privacy=gap_ndp", "model=gcn", "privacy.batch_size=32", "privacy.epochs=2",
                "privacy.encoder_epochs=2"],
    "progap_ndp": ["privacy=progap_ndp", "model=gcn", "privacy.batch_size=32", "privacy.epochs=2"],
    "dpsgd_node": ["privacy=dpsgd_node", "model=sage", "privacy.batch_size=32", "privacy.epochs=2",
                   "privacy.max_degree=2"],
    "dpdgc_ndp": ["privacy=dpdgc_ndp", "model=gcn", "privacy.batch_size=32", "privacy.epochs=2",
                  "privacy.encoder_epochs=2"],
}


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _run(tmp_path: Path, name: str, overrides: list[str]):
    folder = tmp_path / name
    folder.mkdir()
    return execute_experiment(_compose([*SMALL, *overrides]), folder)


# --- noise_seed -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 1.5, "abc", True, float("nan")])
def test_noise_seed_is_checked_in_one_line(value):
    with pytest.raises(ConfigError) as err:
        check_noise_seed(value)
    assert str(err.value).startswith("noise_seed=") and "\n" not in str(err.value)
    assert check_noise_seed(None) is None and check_noise_seed(3) == 3


def test_a_bad_noise_seed_refuses_the_run_before_any_work():
    with pytest.raises(ConfigError, match=r"^noise_seed=-2"):
        prepare_run(_compose([*SMALL, "noise_seed=-2"]))


_TIMING = ("train_seconds",)


def _same_metrics(a: dict, b: dict) -> None:
    keys = (set(a) | set(b)) - {"noise_seed", *_TIMING}
    assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["dp_mlp", "gap_ndp"])
def test_noise_seed_moves_the_noise_and_keeps_the_data(tmp_path: Path, mechanism: str):
    """seed 0 with noise_seed null, 0 and 7: null and 0 are bit-identical (and what the mechanism gives when
    called with the run's seed, as the pipeline did before noise_seed); 7 keeps the data, the split and the
    calibration but draws other noise (other released aggregations, other predictions)."""
    overrides = NODE_RUNS[mechanism]
    default = _run(tmp_path, "null", overrides)
    same = _run(tmp_path, "zero", [*overrides, "noise_seed=0"])
    other = _run(tmp_path, "seven", [*overrides, "noise_seed=7"])
    assert "noise_seed" not in default.metrics and same.metrics["noise_seed"] == 0
    assert other.metrics["noise_seed"] == 7
    _same_metrics(default.metrics, same.metrics)
    p_default, p_same, p_other = (r.trained.predict_proba() for r in (default, same, other))
    assert torch.equal(p_default, p_same)

    run = prepare_run(_compose([*SMALL, *overrides]))   # the pre-noise_seed call: the mechanism gets `seed`
    before = run.mechanism.train(run.data, _compose([*SMALL, *overrides]).model,
                                 _compose([*SMALL, *overrides]).train, run.seed)
    assert torch.equal(before.predict_proba(), p_default)

    for key in ("train_mask", "val_mask", "test_mask", "x", "y", "edge_index"):
        assert torch.equal(getattr(default.data, key), getattr(other.data, key)), key
    for key in ("num_nodes", "num_edges", "num_train", "num_val", "num_test", "noise_multiplier", "epsilon"):
        assert default.metrics[key] == other.metrics[key], key
    assert not torch.equal(p_default, p_other)
    if mechanism == "gap_ndp":  # the released noisy aggregations themselves differ
        assert not torch.equal(default.trained.model.aggregations, other.trained.model.aggregations)
        assert torch.equal(default.trained.model.aggregations, same.trained.model.aggregations)


def test_trial_noise_seeds_are_distinct_spread_and_reproducible():
    taken: list[int] = []
    for number in range(300):
        taken.append(ps.trial_noise_seed(12345, number, taken))
    gaps = np.diff(np.sort(np.asarray(taken, dtype=np.int64)))
    assert gaps.min() > 1000 and max(taken) < 2 ** 40 and min(taken) >= 0
    assert ps.trial_noise_seed(12345, 7) == ps.trial_noise_seed(12345, 7) != ps.trial_noise_seed(12346, 7)


def test_an_interrupted_trial_is_retried_with_its_noise_seed():
    study = optuna.create_study(direction="maximize")
    trial = study.ask({"x": FloatDistribution(0, 1)})
    trial.set_user_attr(NOISE_SEED_ATTR, 424242)
    assert recover_interrupted(study) == 1
    retry = study.ask({"x": FloatDistribution(0, 1)})
    assert retry.user_attrs[RETRY_ATTR] == trial.number and retry.user_attrs[NOISE_SEED_ATTR] == 424242
    assert retry.params == trial.params


def test_the_noise_base_is_drawn_once_and_kept(tmp_path: Path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j")))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    spec = ps.PrivateSelection.from_settings({"eta": 1, "gamma": 0.5})
    base = ps.noise_base(study, spec)
    assert ps.noise_base(optuna.load_study(storage=storage, study_name="s"), spec) == base
    seeded = ps.PrivateSelection.from_settings({"eta": 1, "gamma": 0.5, "seed": 3})
    assert ps.noise_base(optuna.create_study(), seeded) == ps.noise_base(optuna.create_study(), seeded)


# --- the noisy score ------------------------------------------------------------------------------------------


def test_the_noisy_count_is_gaussian_with_the_set_std_and_reproducible():
    metrics = {"mechanism": "dp_mlp", "val_correct": 200, "num_val": 400}
    out, why = ps.noisy_score(metrics, 99, 5.0)
    assert why is None and out == ps.noisy_score(metrics, 99, 5.0)[0]
    assert out["val_acc_noisy"] == pytest.approx(out["val_correct_noisy"] / 400)
    assert out["score_sensitivity"] == 1.0 and out["score_noise"] == 5.0
    draws = np.array([ps.score_draw(seed, 5.0) for seed in range(4000)])
    assert abs(draws.mean()) < 4 * 5.0 / math.sqrt(draws.size)
    assert draws.std() == pytest.approx(5.0, rel=0.05)
    assert ps.noisy_score({"val_acc": 0.5}, 1, 5.0)[0] is None
    assert "empty" in ps.noisy_score({"val_correct": 0, "num_val": 0}, 1, 5.0)[1]


@pytest.fixture(scope="module")
def node_runs(tmp_path_factory) -> dict[str, dict]:
    """One tiny finished run of every node-level mechanism (its metrics.json)."""
    root = tmp_path_factory.mktemp("node_runs")
    return {name: _run(root, name, overrides).metrics for name, overrides in NODE_RUNS.items()}


@pytest.mark.parametrize("name,sensitivity", [("dp_mlp", 1), ("gap_ndp", 1), ("progap_ndp", 1), ("dpdgc_ndp", 1),
                                              ("dpsgd_node", 1 + 2 + 4)])
def test_node_level_curves_are_rebuilt_from_metrics_json(node_runs, name, sensitivity):
    """Each node-level mechanism's rebuilt curve gives back the run's epsilon; the count's sensitivity is 1,
    or N_K = 1 + D + D^2 for dpsgd_node (D = 2, two layers); a tampered epsilon gives no curve."""
    metrics = node_runs[name]
    assert metrics["val_correct"] == round(metrics["val_acc"] * metrics["num_val"])
    trial, why = ps.trial_rdp_curve(metrics)
    assert why is None, why
    assert trial.sensitivity == sensitivity
    assert acc.epsilon_from_rdp(trial.curve, metrics["delta"], trial.orders) == pytest.approx(metrics["epsilon"],
                                                                                                rel=1e-6)
    assert "rebuilt" in ps.trial_rdp_curve({**metrics, "epsilon": metrics["epsilon"] * 0.95})[1]
    assert "lacks" in ps.trial_rdp_curve({k: v for k, v in metrics.items() if k != "noise_multiplier"})[1]


def test_the_score_rdp_is_composed_before_the_selection(node_runs):
    """best.json's total = Theorem 2 on (the model's curve + a Delta^2 / (2 s^2)); more score noise costs less,
    dpsgd_node's larger Delta costs more at the same noise; without score_noise there is no node-level bound."""
    release = node_runs["dp_mlp"]
    spec = ps.PrivateSelection.from_settings({"eta": 1, "mean": 5, "score_noise": 4})
    out = ps.private_selection_fields(spec, [release, release])
    trial, _ = ps.trial_rdp_curve(release)
    with_score = trial.curve + acc.rdp_gaussian(4.0, 1.0)
    assert out["selection_epsilon"] == pytest.approx(ps.selection_epsilon(with_score, spec, release["delta"]))
    assert out["selection_epsilon_trial"] == pytest.approx(acc.epsilon_from_rdp(with_score, release["delta"]))
    assert release["epsilon"] < out["selection_epsilon_trial"] < out["selection_epsilon"]
    assert out["selection_score_sensitivity"] == 1.0 and "node-level" in out["selection_note"]
    quieter = ps.private_selection_fields(ps.PrivateSelection.from_settings({"eta": 1, "mean": 5, "score_noise": 40}),
                                          [release])
    assert quieter["selection_epsilon"] < out["selection_epsilon"]
    none = ps.private_selection_fields(ps.PrivateSelection.from_settings({"eta": 1, "mean": 5}), [release])
    assert none["selection_epsilon"] is None and "score_noise" in none["selection_note"]
    sgd = node_runs["dpsgd_node"]
    sgd_out = ps.private_selection_fields(spec, [sgd])
    sgd_trial, _ = ps.trial_rdp_curve(sgd)
    assert sgd_out["selection_epsilon"] == pytest.approx(ps.selection_epsilon(
        sgd_trial.curve + acc.rdp_gaussian(4.0, 7.0), spec, sgd["delta"]))
    dpdgc = node_runs["dpdgc_ndp"]  # its own integer-order grid
    dpdgc_out = ps.private_selection_fields(spec, [dpdgc])
    assert dpdgc_out["selection_epsilon"] > dpdgc["epsilon"]


# --- the sweeper's checks -------------------------------------------------------------------------------------

NODE_SPEC = {"eta": 1, "gamma": 0.5, "score_noise": 3}
RANDOM = optuna.samplers.RandomSampler(seed=0)
LR = {"privacy.lr": FloatDistribution(1e-3, 1e-1)}


def _cfg(name: str, data: str = "synthetic"):
    return OmegaConf.create({"privacy": {"name": name, "epsilon": 8.0}, "data": {"name": data}})


@pytest.mark.parametrize("spec,sampled,name,objective,fixed,field", [
    ({"eta": 1, "gamma": 0.5}, LR, "dp_mlp", "val_acc", (), "hydra.sweeper.private_selection.score_noise"),
    (NODE_SPEC, LR, "dp_mlp", "val_auroc", (), "eval.objective"),
    (NODE_SPEC, {"privacy.epochs": CategoricalDistribution([5, 10])}, "dp_mlp", "val_acc", (), "privacy.epochs"),
    (NODE_SPEC, {"privacy.encoder_epochs": CategoricalDistribution([5, 10])}, "gap_ndp", "val_acc", (),
     "privacy.encoder_epochs"),
    (NODE_SPEC, {"model.num_layers": CategoricalDistribution([1, 2])}, "dpsgd_node", "val_acc", (),
     "model.num_layers"),
    (NODE_SPEC, {"noise_seed": CategoricalDistribution([1, 2])}, "dp_mlp", "val_acc", (), "noise_seed"),
    (NODE_SPEC, LR, "dp_mlp", "val_acc", ("noise_seed=3",), "noise_seed"),
    (NODE_SPEC, LR, "gap_edp", "val_acc", (), "hydra.sweeper.private_selection.score_noise"),
    (NODE_SPEC, LR, "dpdgc_edp", "val_acc", (), "privacy"),
])
def test_node_level_studies_outside_the_theorem_are_refused(spec, sampled, name, objective, fixed, field):
    with pytest.raises(ConfigError) as err:
        ps.check_plan(ps.PrivateSelection.from_settings(spec), sampled, [_cfg(name)], RANDOM, objective, fixed)
    assert str(err.value).startswith(f"{field}=") and "\n" not in str(err.value)


def test_data_with_periods_is_refused_and_the_objective_becomes_the_noisy_one():
    spec = ps.PrivateSelection.from_settings(NODE_SPEC)
    with pytest.raises(ConfigError, match=r"^data='synthetic_temporal'"):
        ps.check_plan(spec, LR, [_cfg("dp_mlp", "synthetic_temporal")], RANDOM, "val_acc")
    assert ps.check_plan(spec, {**LR, "privacy.max_grad_norm": FloatDistribution(0.5, 2)}, [_cfg("dp_mlp")],
                         RANDOM, "val_acc") == "val_acc_noisy"
    assert ps.check_plan(ps.PrivateSelection.from_settings({"eta": 1, "gamma": 0.5}),
                         {"train.lr": FloatDistribution(1e-3, 1e-1)}, [_cfg("gap_edp")], RANDOM,
                         "val_auroc") == "val_auroc"


def test_mechanism_units_match_the_registry():
    import importlib

    from gnnrisk.privacy import MECHANISMS

    for name, accounting in ps.ACCOUNTING.items():
        module, cls = MECHANISMS[name].split(":")
        assert getattr(importlib.import_module(module), cls).privacy_unit == accounting.unit, name


# --- a real node-level study ----------------------------------------------------------------------------------

TINY = ["data.num_nodes=150", "train.epochs=2", "threads=1", "device=cpu"]
STUDY = [experiment_override("tune"), *TINY, *DP_MLP, "hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler",
         "~hydra.sweeper.sampler.n_startup_trials", "eval.objective=val_acc", "train.lr=0.01",
         "model.hidden_channels=16", "model.dropout=0.0", "privacy.lr=choice(0.01,0.02)",
         "hydra.sweeper.private_selection={eta:1,gamma:0.5,seed:5,score_noise:2}"]


@pytest.mark.slow
def test_a_node_level_study_scores_noisy_counts_with_independent_noise(tmp_path: Path):
    """dp_mlp, K = 3 (seed 5) over two values of privacy.lr: three run folders even though two trials draw the
    same value (their noise seeds differ and enter the folder names), every run reports its noise_seed, the study
    optimises val_acc_noisy = (val_correct + N(0, 2^2)) / num_val, and best.json's total is Theorem 2 on the
    DP-SGD curve plus the score's; a re-run launches nothing and reads the same scores."""
    sweep = tmp_path / "study"
    sweep.mkdir()
    run_sweep(sweep, *STUDY)
    metrics = metrics_files(sweep)
    best = json.loads((sweep / "tuning" / "best.json").read_text())
    with open(sweep / "tuning" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(metrics) == len(rows) == best["n_trials"] == 3
    assert best["objective"] == "val_acc_noisy" and "val_acc_noisy" in rows[0]
    seeds = {int(r["noise_seed"]) for r in rows}
    assert len(seeds) == 3 and {m["noise_seed"] for m in metrics.values()} == seeds
    for row in rows:
        m = metrics[row["run_dir"]]
        assert m["noise_seed"] == int(row["noise_seed"]) and m["seed"] == 0
        noisy = m["val_correct"] + ps.score_draw(m["noise_seed"], 2.0)
        assert float(row["val_acc_noisy"]) == pytest.approx(noisy / m["num_val"]) == m["val_acc_noisy"]
    assert len({m["num_edges"] for m in metrics.values()}) == 1       # one data set, one split
    run = metrics[best["best_run_dir"]]
    assert best["best_value"] == max(float(r["val_acc_noisy"]) for r in rows)
    curve = acc.rdp_subsampled_gaussian(run["noise_multiplier"], run["sample_rate"], run["steps"])
    spec = ps.PrivateSelection.from_settings({"eta": 1, "gamma": 0.5, "score_noise": 2})
    assert best["selection_epsilon"] == pytest.approx(
        ps.selection_epsilon(curve + acc.rdp_gaussian(2.0, 1.0), spec, run["delta"]), rel=1e-9)
    assert run["epsilon"] < best["selection_epsilon_trial"] < best["selection_epsilon"]
    again = run_sweep(sweep, *STUDY)
    assert "Launching" not in again.stdout + again.stderr and metrics_files(sweep) == metrics
