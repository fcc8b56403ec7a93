"""`logger=mlflow`: a real `gnnrisk-run -m` sweep, read back with MLflow's own client, equals its run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")

from tracking_helpers import EPOCHS, TINY, cli, history_columns, numeric_metrics, run_dirs  # noqa: E402

pytestmark = pytest.mark.slow  # each test trains several models (minutes on 2 cores): the full suite only

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def client_of(store: Path):
    """MLflow's client on a gnnrisk tracking store."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gnnrisk-run -m seed=0,1 logger=mlflow` on a tiny graph: its sweep folder."""
    sweep_dir = tmp_path_factory.mktemp("mlflow") / "study_a"
    proc = cli("-m", f"hydra.sweep.dir={sweep_dir}", *TINY, "logger=mlflow", "seed=0,1", cwd=sweep_dir.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tracking failed" not in proc.stdout + proc.stderr
    return sweep_dir


def test_sweep_is_one_experiment_with_one_run_per_job(sweep: Path) -> None:
    """The sweep folder's store holds experiment `study_a` with the two jobs, named by their overrides."""
    client = client_of(sweep / "tracking")
    experiment = client.get_experiment_by_name("study_a")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    folders = run_dirs(sweep)
    assert len(runs) == 2 and len(folders) == 2
    assert sorted(r.info.run_name for r in runs) == sorted(f.name for f in folders)
    assert all(r.info.status == "FINISHED" for r in runs)


def test_params_metrics_curve_and_plots_equal_the_run_folders(sweep: Path) -> None:
    """Params are the flattened config; final metrics are metrics.json's numbers; the curve has one
    point per epoch; the plot is an artifact; the guarantee is tagged."""
    client = client_of(sweep / "tracking")
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("study_a").experiment_id])}
    for folder in run_dirs(sweep):
        run = runs[folder.name]
        seed = "0" if "seed=0" in folder.name else "1"
        assert run.data.params["model.name"] == "gcn" and run.data.params["seed"] == seed
        assert run.data.params["data.num_nodes"] == "200" and run.data.params["logger.name"] == "mlflow"
        truth = numeric_metrics(folder)
        assert {k: run.data.metrics[k] for k in truth} == pytest.approx(truth, rel=1e-12)
        curve = history_columns(folder)
        for key in ("train_loss", "val_loss", "val_acc"):
            history = client.get_metric_history(run.info.run_id, f"epoch/{key}")
            assert len(history) == EPOCHS
            assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(1, EPOCHS + 1))
            assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(curve[key])
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["reliability.png"]
        assert run.data.tags["guarantee.mechanism"] == "none" and run.data.tags["guarantee.epsilon"] == "null"
        assert run.data.tags["gnnrisk.run_dir"] == str(folder.resolve())


def test_search_runs_finds_the_runs_by_param(sweep: Path) -> None:
    """The fluent API reads the store too: `mlflow.search_runs` filtered on a param."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{sweep / 'tracking' / 'mlflow.db'}")
    try:
        table = mlflow.search_runs(experiment_names=["study_a"], filter_string="params.seed = '1'")
    finally:
        mlflow.set_tracking_uri(None)
    assert len(table) == 1 and table["params.model.name"].tolist() == ["gcn"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [["hydra/launcher=parallel"],
                                      ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]],
                         ids=["joblib", "submitit"])
def test_concurrent_jobs_share_one_store(launcher: list[str], tmp_path: Path) -> None:
    """joblib workers, and submitit's job processes (the Slurm path), write into the sweep's one store in turn."""
    sweep_dir = tmp_path / "concurrent"
    proc = cli("-m", f"hydra.sweep.dir={sweep_dir}", *launcher, *TINY, "logger=mlflow", "seed=0,1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    client = client_of(sweep_dir / "tracking")
    runs = client.search_runs([client.get_experiment_by_name("concurrent").experiment_id])
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1"]
    assert all(len(client.get_metric_history(r.info.run_id, "epoch/train_loss")) == EPOCHS for r in runs)
