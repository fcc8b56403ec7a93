"""`logger=csv`: plain CSV records per tracked run; where the store goes; skipped runs are tracked, not re-run."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

import gnnrisk
from tracking_helpers import EPOCHS, TINY, history_columns, numeric_metrics, run_dirs


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def key_values(path: Path) -> dict[str, str]:
    """A key,value CSV file as a dict."""
    return {row["key"]: row["value"] for row in read_csv(path)}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gnnrisk.sweep` over two seeds with `logger=csv`: its sweep folder."""
    sweep_dir = tmp_path_factory.mktemp("csv") / "study_c"
    runs = gnnrisk.sweep(["seed=0,1"], sweep_dir=sweep_dir, overrides=[*TINY, "logger=csv"])
    assert (runs["status"] == "finished").all() and len(runs) == 2
    return sweep_dir


def test_each_job_has_params_metrics_curve_and_plots(sweep: Path) -> None:
    """params.csv = the flattened config, metrics.csv = metrics.json's numbers, history.csv = the curve with
    step = epoch, artifacts/ = the plots, tags.csv = the guarantee."""
    store = sweep / "tracking" / "csv" / "study_c"
    folders = run_dirs(sweep)
    assert sorted(p.name for p in store.iterdir()) == sorted(f.name for f in folders)
    for folder in folders:
        tracked = store / folder.name
        params = key_values(tracked / "params.csv")
        assert params["model.name"] == "gcn" and params["seed"] == ("0" if "seed=0" in folder.name else "1")
        metrics = {k: float(v) for k, v in key_values(tracked / "metrics.csv").items()}
        assert metrics == pytest.approx(numeric_metrics(folder), rel=1e-12)
        history = read_csv(tracked / "history.csv")
        curve = history_columns(folder)
        for key in ("train_loss", "val_loss", "val_acc"):
            points = [row for row in history if row["key"] == key]
            assert [int(p["step"]) for p in points] == list(range(1, EPOCHS + 1))
            assert [float(p["value"]) for p in points] == curve[key]
        assert [p.name for p in (tracked / "artifacts").iterdir()] == ["reliability.png"]
        tags = key_values(tracked / "tags.csv")
        assert tags["run_name"] == folder.name and tags["experiment"] == "study_c"
        assert tags["guarantee.privacy_unit"] == "null" and tags["guarantee.training_curve"].startswith("tracked")


def test_skipped_runs_are_tracked_without_rerunning(sweep: Path) -> None:
    """Resuming the finished sweep with a logger backfills the store from the run folders and trains nothing;
    a second resume replaces the records rather than duplicating them."""
    store = sweep / "tracking" / "csv" / "study_c"
    shutil.rmtree(sweep / "tracking")
    before = {f: (f / "metrics.json").stat().st_mtime_ns for f in run_dirs(sweep)}
    for _ in range(2):
        gnnrisk.sweep(["seed=0,1"], sweep_dir=sweep, overrides=[*TINY, "logger=csv"])
        assert sorted(p.name for p in store.iterdir()) == sorted(f.name for f in before)
    assert {f: (f / "metrics.json").stat().st_mtime_ns for f in run_dirs(sweep)} == before  # skipped, not re-run
    for folder in before:
        metrics = {k: float(v) for k, v in key_values(store / folder.name / "metrics.csv").items()}
        assert metrics == pytest.approx(numeric_metrics(folder), rel=1e-12)
        assert len(read_csv(store / folder.name / "history.csv")) == 3 * EPOCHS


def test_tracking_does_not_rename_run_folders(tmp_path: Path) -> None:
    """`logger` and `logger.dir` are not part of a job's folder name: the same folders with or without tracking."""
    plain, tracked = tmp_path / "plain", tmp_path / "tracked"
    gnnrisk.sweep(["seed=0"], sweep_dir=plain, overrides=[*TINY, "audit=none"])
    gnnrisk.sweep(["seed=0"], sweep_dir=tracked, overrides=[*TINY, "audit=none", "logger=csv",
                                                            f"logger.dir={tmp_path / 'a' / 'b'}"])
    assert [f.name for f in run_dirs(plain)] == [f.name for f in run_dirs(tracked)]
    assert (tmp_path / "a" / "b" / "csv" / "tracked").is_dir()


def test_single_run_store_in_run_folder_or_logger_dir(tmp_path: Path) -> None:
    """A single run's store is tracking/ in its folder (experiment = the parent folder's name); logger.dir moves it."""
    run_dir = tmp_path / "day" / "run1"
    gnnrisk.run([*TINY, "audit=none", "logger=csv"], run_dir=run_dir)
    assert (run_dir / "tracking" / "csv" / "day" / "run1" / "params.csv").is_file()
    shared = tmp_path / "shared" / "store"
    other = tmp_path / "day" / "run2"
    gnnrisk.run([*TINY, "audit=none", "logger=csv", f"logger.dir={shared}"], run_dir=other)
    assert not (other / "tracking").exists()
    assert key_values(shared / "csv" / "day" / "run2" / "metrics.csv")["epochs"] == str(float(EPOCHS))


def test_forecast_curves_are_tracked_per_origin(tmp_path: Path) -> None:
    """On data with periods (the temporal path) each origin's curve is `origin_<t>/<metric>`."""
    run_dir = tmp_path / "temporal" / "run"
    result = gnnrisk.run(["data=synthetic_temporal", "data.num_nodes=200", "data.num_communities=6", "data.periods=5",
                          "eval.origins=2", "train.epochs=2", "train.patience=100", "device=cpu", "logger=csv"],
                         run_dir=run_dir)
    history = read_csv(run_dir / "tracking" / "csv" / "temporal" / "run" / "history.csv")
    keys = {row["key"] for row in history}
    assert keys == {f"origin_{t}/{m}" for t in (2, 3) for m in ("train_loss", "val_loss", "val_acc")}
    assert len(history) == 2 * 2 * 3  # origins x epochs x metrics
    metrics = key_values(run_dir / "tracking" / "csv" / "temporal" / "run" / "metrics.csv")
    assert float(metrics["test_auroc"]) == pytest.approx(result.metrics["test_auroc"], rel=1e-12)
