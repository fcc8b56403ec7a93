"""The Optuna sweeper's pieces without running a study: search space, objective, selection cost, study files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from gnnrisk.errors import ConfigError
from gnnrisk.train.metrics import classification_metrics
from gnnrisk.tuning import (OBJECTIVE_METRICS, SearchSpace, StudyPlan, allowed_objectives, build_sampler,
                            check_direction, check_objective, ended_trials, override_value, parse_search_space,
                            read_objective, recover_interrupted, selection_notes, selection_privacy,
                            write_study_files)


def test_search_space_syntax_maps_to_optuna_distributions():
    """choice/a,b -> categorical, integer range -> int with step, interval -> float, tags log and int."""
    space = parse_search_space({
        "train.lr": "tag(log, interval(1e-4, 1e-1))",
        "model.hidden_channels": "choice(16, 32, 64)",
        "model.dropout": "interval(0.0, 0.5)",
        "model.num_layers": "range(1, 5)",
        "train.patience": "range(10, 60, 20)",
        "model.act": "relu,elu",
        "train.epochs": "tag(int, log, interval(10, 1000))",
        "model.name": "gcn",
    }, [])
    d = space.distributions
    assert d["train.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["model.hidden_channels"] == CategoricalDistribution([16, 32, 64])
    assert d["model.dropout"] == FloatDistribution(0.0, 0.5)
    assert d["model.num_layers"] == IntDistribution(1, 4)
    assert d["train.patience"] == IntDistribution(10, 50, step=20)
    assert d["model.act"] == CategoricalDistribution(["relu", "elu"])
    assert d["train.epochs"] == IntDistribution(10, 1000, log=True)
    assert space.fixed == ["model.name=gcn"]


def test_command_line_replaces_config_params_and_keeps_fixed_overrides():
    """A command-line sweep replaces the same key of `params`; plain command-line values are shared overrides."""
    space = parse_search_space({"train.lr": "interval(0.001, 0.1)", "model.dropout": "interval(0, 0.5)"},
                               ["data.num_nodes=150", "train.lr=choice(0.01,0.1)", "+train.extra=1"])
    assert space.distributions["train.lr"] == CategoricalDistribution([0.01, 0.1])
    assert list(space.distributions) == ["model.dropout", "train.lr"]
    assert space.fixed == ["data.num_nodes=150", "+train.extra=1"]
    overrides = space.overrides({"model.dropout": 0.25, "train.lr": 0.1})
    assert overrides == ["data.num_nodes=150", "+train.extra=1", "model.dropout=0.25", "train.lr=0.1"]


@pytest.mark.parametrize("value,text", [(None, "null"), (True, "true"), (1e-05, "1e-05"), (0.1 + 0.2, "0.30000000000000004"),
                                        (64, "64"), ("gcn", "gcn"), ("a b", "a\\ b")])
def test_sampled_values_become_exact_override_text(value, text):
    """Floats keep full precision (the run gets exactly the sampled value), strings are escaped."""
    assert override_value(value) == text


@pytest.mark.parametrize("params,field", [
    ({"model.dropout": "interval(0.5, 0.1)"}, "hydra.sweeper.params.model.dropout"),
    ({"train.lr": "tag(log, interval(0, 1))"}, "hydra.sweeper.params.train.lr"),
    ({"train.epochs": "tag(int, interval(1.5, 10))"}, "hydra.sweeper.params.train.epochs"),
    ({"train.lr": "tag(fast, interval(0.1, 1))"}, "hydra.sweeper.params.train.lr"),
    ({"model.hidden_channels": "range(10, 5)"}, "hydra.sweeper.params.model.hidden_channels"),
    ({"model.dropout": "interval(0.1"}, "hydra.sweeper.params.model.dropout"),
    ({"model": {"dropout": "interval(0, 1)"}}, "hydra.sweeper.params.model"),
    ({"model.name": "gcn"}, "hydra.sweeper.params"),
    ({}, "hydra.sweeper.params"),
])
def test_bad_search_spaces_are_one_line_errors_naming_the_field(params, field):
    """Each refusal names the key of `params` it is about."""
    with pytest.raises(ConfigError) as err:
        parse_search_space(params, [])
    assert err.value.field == field and "\n" not in str(err.value)


def test_objective_keys_are_the_validation_metrics_a_run_writes():
    """The allowed objectives are exactly `val_` + the keys classification_metrics writes (and `_true`)."""
    written = classification_metrics(torch.tensor([[0.2, 0.8], [0.7, 0.3]]), torch.tensor([1, 0]))
    assert tuple(written) == OBJECTIVE_METRICS
    assert allowed_objectives(False) == [f"val_{k}" for k in written]
    assert allowed_objectives(True) == [f"val_{k}" for k in written] + [f"val_{k}_true" for k in written]
    assert check_objective(None, True) is None
    assert check_objective("val_auroc_true", True) == "val_auroc_true"


@pytest.mark.parametrize("objective,has_truth,says", [
    ("test_auroc", True, "biases the reported test numbers"),
    ("test_auroc_true", True, "e.g. val_auroc_true"),
    ("h2_test_acc", True, "test split"),
    ("train_acc", True, "overfitting"),
    ("val_loss", True, "allowed: val_acc"),
    ("val_auroc_true", False, "no ground truth"),
    ("epsilon", True, "not a metric"),
    (3, True, "allowed"),
])
def test_bad_objectives_are_refused_with_the_reason(objective, has_truth, says):
    """test_* is refused for biasing the test numbers, unknown keys list the allowed ones."""
    with pytest.raises(ConfigError) as err:
        check_objective(objective, has_truth)
    assert err.value.field == "eval.objective" and says in str(err.value), str(err.value)


def test_direction_must_fit_a_higher_is_better_objective():
    """maximize is accepted; minimize a higher-is-better metric, or another word, is refused."""
    assert check_direction("maximize", "val_auroc") == "maximize"
    for bad in ("minimize", "max", None):
        with pytest.raises(ConfigError, match="hydra.sweeper.direction"):
            check_direction(bad, "val_auroc")


def test_resumed_sampler_seed_moves_with_the_trials_so_far():
    """A resumed study draws new proposals instead of repeating the first ones (seed + trials so far)."""
    sampler_cfg = {"_target_": "optuna.samplers.RandomSampler", "seed": 3}
    draws = []
    for offset in (0, 0, 4):
        study = optuna.create_study(sampler=build_sampler(sampler_cfg, offset), direction="maximize")
        draws.append(study.ask({"x": FloatDistribution(0, 1)}).params["x"])
    assert draws[0] == draws[1] != draws[2]
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler"):
        build_sampler({"_target_": "optuna.samplers.NoSuchSampler"}, 0)
    with pytest.raises(ConfigError, match="hydra/sweeper=grid"):
        build_sampler({"_target_": "optuna.samplers.BruteForceSampler"}, 0)
    with pytest.raises(ConfigError, match="expected an optuna.samplers class"):
        build_sampler({"_target_": "collections.OrderedDict"}, 0)


EDGE = {"mechanism": "gap_edp", "privacy_unit": "edge", "epsilon": 1.9, "delta": 1e-4}


def test_edge_level_selection_costs_the_sum_of_the_trials():
    """Basic composition over every distinct release: epsilon and delta add up, the relation is named."""
    out = selection_privacy([EDGE, {**EDGE, "epsilon": 2.0}, {**EDGE, "epsilon": 4.0, "delta": 2e-4}])
    assert out["selection_private"] is True and out["selection_bounded"] is True
    assert out["selection_epsilon_upper"] == pytest.approx(7.9)
    assert out["selection_delta_upper"] == pytest.approx(4e-4)
    assert out["epsilon_per_trial"] == 4.0 and out["selection_releases"] == 3
    assert out["selection_relation"] == "edge-level" and not out["selection_reads_private_labels"]
    # the bound is never below what any trial or the selected one spent
    assert out["selection_epsilon_upper"] >= out["epsilon_per_trial"]


def test_node_level_and_mixed_selections_have_no_finite_bound():
    """Node-level: the validation labels are private and read outside the mechanism. Mixed trials: no bound."""
    node = {"mechanism": "gap_ndp", "privacy_unit": "node", "epsilon": 2.0, "delta": 1e-5}
    out = selection_privacy([node, node])
    assert out["selection_private"] and out["selection_bounded"] is False
    assert out["selection_epsilon_upper"] is None and out["models_epsilon_sum"] == 4.0
    assert out["selection_reads_private_labels"] and "no finite privacy bound" in out["selection_note"]
    with_public = selection_privacy([EDGE, {"mechanism": "none", "privacy_unit": None, "epsilon": None}])
    assert with_public["selection_bounded"] is False and with_public["selection_epsilon_upper"] is None
    assert "non-private" in with_public["selection_note"]
    mixed = selection_privacy([EDGE, node])
    assert mixed["selection_bounded"] is False and mixed["privacy_unit"] == "mixed"
    public = selection_privacy([{"mechanism": "none", "privacy_unit": None, "epsilon": None}])
    assert public["selection_private"] is False and public["selection_note"] is None


def _plan(tmp_path: Path) -> StudyPlan:
    """A study plan over one float parameter in `tmp_path`."""
    space = SearchSpace({"x": FloatDistribution(0, 1)}, {"x": "x"}, ["model=gcn"])
    return StudyPlan(tmp_path, "val_auroc", "maximize", "s", 3, 1, space,
                     build_sampler({"seed": 0}, 0), {"_target_": "optuna.samplers.TPESampler", "seed": 0})


def _run(folder: Path, metrics: dict) -> None:
    """A finished run folder with these metrics."""
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_objective_is_read_from_metrics_json_and_failures_say_why(tmp_path: Path):
    """The value in metrics.json; a failed run (error.json), a missing key or a null value fail the trial."""
    _run(tmp_path / "ok", {"val_auroc": 0.75})
    _run(tmp_path / "null", {"val_auroc": None})
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / "error.json").write_text(json.dumps({"error": "seed=-1 is not allowed"}))
    assert read_objective(tmp_path / "ok", "val_auroc") == (0.75, None)
    assert read_objective(tmp_path / "null", "val_auroc")[0] is None
    assert "seed=-1" in read_objective(tmp_path / "failed", "val_auroc")[1]
    assert "did not finish" in read_objective(tmp_path / "missing", "val_auroc")[1]


def test_interrupted_trials_are_failed_re_enqueued_once_and_not_counted(tmp_path: Path):
    """A RUNNING trial of an earlier session: FAIL, its params enqueued once; only ended trials count."""
    plan = _plan(tmp_path)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j")))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    done = study.ask(plan.space.distributions)
    done.set_user_attr("job_ended", True)
    study.tell(done, 0.5)
    killed = study.ask(plan.space.distributions)  # left RUNNING, as by a SIGKILL
    assert recover_interrupted(study) == 1
    assert recover_interrupted(study) == 0  # a second resume does not enqueue it again
    assert ended_trials(study) == 1
    retry = study.ask(plan.space.distributions)
    assert retry.params == killed.params and retry.user_attrs["retry_of"] == killed.number


def test_study_files_mark_a_private_selection_and_the_report_note(tmp_path: Path):
    """trials.csv and best.json from a study of two edge-level runs; the report's note names the bound."""
    plan = _plan(tmp_path)
    study = optuna.create_study(direction="maximize")
    for i, value in enumerate((0.6, 0.8)):
        _run(tmp_path / f"run{i}", {"val_auroc": value, **EDGE, "epsilon": 1.0 + i})
        trial = study.ask(plan.space.distributions)
        trial.set_user_attr("run_dir", f"run{i}")
        trial.set_user_attr("job_ended", True)
        study.tell(trial, value)
    write_study_files(study, plan)
    best = json.loads((tmp_path / "tuning" / "best.json").read_text())
    assert best["best_trial"] == 1 and best["best_run_dir"] == "run1" and best["best_value"] == 0.8
    assert best["selection_private"] and best["selection_epsilon_upper"] == 3.0
    assert best["best_overrides"][0] == "model=gcn"
    rows = (tmp_path / "tuning" / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,val_auroc,params.x,run_dir,mechanism,privacy_unit,epsilon,delta")
    assert len(rows) == 3 and all(r.endswith("True") for r in rows[1:])
    notes = selection_notes(tmp_path)
    assert len(notes) == 1 and "NOT COVERED BY EPSILON" in notes[0] and "epsilon 3" in notes[0]
    assert selection_notes(tmp_path / "run0") == []
    assert math.isclose(best["epsilon_per_trial"], 2.0)
