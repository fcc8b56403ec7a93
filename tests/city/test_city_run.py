"""data=synthetic_city through the pipeline: a forecaster's run folder, and what cannot run on the city refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gnnrisk.errors import ConfigError, ConfigErrors
from gnnrisk.pipeline import execute_experiment, prepare_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "foundation"))
from foundation_helpers import compose_cfg  # noqa: E402

SMALL = ("data=synthetic_city", "data.num_people=600", "device=cpu", "threads=1")


def _refused_fields(*overrides: str) -> set[str]:
    """The fields a city run with `overrides` is refused on (all at once)."""
    with pytest.raises(ConfigError) as err:
        prepare_run(compose_cfg(*SMALL, *overrides))
    errors = err.value.errors if isinstance(err.value, ConfigErrors) else [err.value]
    return {e.field for e in errors}


def test_a_baseline_run_writes_its_scores_and_forecasts(tmp_path: Path):
    result = execute_experiment(compose_cfg(*SMALL, "model=retro_hotspot"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic_city" and metrics["model"] == "retro_hotspot"
    assert metrics["forecast_origins"] == [8, 9, 10] and metrics["epsilon"] is None
    assert 0.0 <= metrics["auroc_true"] <= 1.0 and 0.0 <= metrics["hit_rate_true_at_5"] <= 1.0  # quality: test_hotspot_*
    table = pd.read_csv(tmp_path / "forecast.csv")
    assert len(table) == 3 * metrics["num_places"] and set(table["period"]) == {9, 10, 11}
    assert result.trained.scores.shape == (3, metrics["num_places"])


def test_a_heterogeneous_gnn_runs_and_writes_its_curve(tmp_path: Path):
    execute_experiment(compose_cfg(*SMALL, "model=hetero_sage", "train.epochs=3", "eval.origins=1"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["forecast_origins"] == [10] and metrics["history_file"] == "history.csv"
    assert {"origin", "epoch", "train_loss"} <= set(pd.read_csv(tmp_path / "history.csv").columns)


def test_a_person_level_run_scores_people(tmp_path: Path):
    execute_experiment(compose_cfg(*SMALL, "model=network_exposure", "eval.target=person"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["target"] == "person" and 0.0 <= metrics["auprc_true"] <= 1.0
    table = pd.read_csv(tmp_path / "forecast.csv")
    assert len(table) == 3 * metrics["num_people"] and "person" in table and "row" not in table


def test_the_patrol_feedback_loop_runs_beside_the_forecast(tmp_path: Path):
    execute_experiment(compose_cfg(*SMALL, "model=retro_hotspot", "audit=feedback", "audit.mode=ipw"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["auroc_true"] <= 1.0 and any(k.startswith("feedback_") for k in metrics)
    table = pd.read_csv(tmp_path / "city_feedback.csv")
    assert len(table) == 12 and (tmp_path / "city_feedback.png").exists()


def test_the_feedback_loop_needs_a_place_forecaster_it_can_feed():
    assert _refused_fields("model=network_exposure", "eval.target=person", "audit=feedback") == {"eval.target"}
    assert _refused_fields("model=hetero_sage", "audit=feedback", "audit.mode=ipw",
                           "audit.warmup=0") == {"audit.mode", "audit.warmup"}


def test_explanations_on_typed_links_run_beside_the_forecast(tmp_path: Path):
    execute_experiment(compose_cfg(*SMALL, "model=hetero_sage", "train.epochs=3", "eval.origins=1",
                                   "explain=saliency", "explain.num_nodes=3", "data.crime.near_repeat=0.5",
                                   "data.crime.background_rate=0.1"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 1 <= metrics["explain_num_nodes"] <= 3 and 0.0 <= metrics["explain_auroc"] <= 1.0
    assert {"node", "score"} <= set(pd.read_csv(tmp_path / "city_explanations.csv").columns)


def test_a_city_without_a_planted_link_in_reach_finishes_with_nothing_explained(tmp_path: Path, monkeypatch):
    import gnnrisk.city_run as city_run
    from gnnrisk.explain.city import NothingToExplain

    def nothing(*args, **kwargs):
        raise NothingToExplain("no place has a planted triggering link within 2 hops at origin 10")
    monkeypatch.setattr(city_run, "fit_for_explanation", nothing)
    execute_experiment(compose_cfg(*SMALL, "model=hetero_sage", "train.epochs=2", "eval.origins=1",
                                   "explain=saliency"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["explain_num_nodes"] == 0 and 0.0 <= metrics["auroc_true"] <= 1.0


def test_explainers_that_cannot_read_a_model_are_refused():
    assert _refused_fields("model=hgt", "explain=gnnexplainer") == {"model.name"}
    assert _refused_fields("model=sepp", "explain=saliency") == {"model.name"}
    assert _refused_fields("model=hetero_sage", "explain=pgexplainer") == {"explain"}
    assert _refused_fields("model=hetero_gat", "explain=saliency", "explain.num_nodes=0") == {"explain.num_nodes"}


def test_a_recurrent_forecaster_of_the_temporal_module_runs_on_the_city(tmp_path: Path):
    execute_experiment(compose_cfg(*SMALL, "model=gconv_gru", "train.epochs=3", "eval.origins=1"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "gconv_gru" and metrics["forecast_origins"] == [10]


def test_targets_are_checked_against_the_model_and_the_data():
    assert _refused_fields("model=sepp", "eval.target=person") == {"model.name"}
    assert _refused_fields("model=person_history") == {"model.name"}  # the default target is place
    assert _refused_fields("model=hgt", "eval.target=persons") == {"eval.target"}
    with pytest.raises(ConfigError) as err:
        prepare_run(compose_cfg("data.num_nodes=300", "eval.target=person", "device=cpu", "threads=1"))
    assert err.value.field == "eval.target"


def test_what_cannot_run_on_the_city_is_refused_at_once():
    fields = _refused_fields("model=gcn", "privacy=gap_ndp", "attack=lsa", "eval.origins=20")
    assert fields == {"model.name", "privacy.name", "attack"}
    assert _refused_fields("model=hgt", "eval.origins=11") == {"eval.origins"}  # a GNN needs an earlier origin
    assert _refused_fields("model=sepp", "model.iterations=0") == {"model.iterations"}


def test_a_city_forecaster_on_another_graph_is_refused():
    with pytest.raises(ConfigError) as err:
        prepare_run(compose_cfg("model=hgt", "data.num_nodes=300", "device=cpu", "threads=1"))
    assert err.value.field == "model.name" and "data=synthetic_city" in str(err.value)


@pytest.mark.slow  # a subprocess (7 s); the refusal itself is covered in process above
def test_the_cli_refuses_a_private_city_run_in_one_line(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "gnnrisk", *SMALL, "model=sepp", "privacy=dp_mlp",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("gnnrisk: error:")]
    assert len(lines) == 1 and "privacy" in lines[0], done.stderr
