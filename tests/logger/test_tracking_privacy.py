"""The privacy rule in the tracking store: only what the run folder's top level holds, never diagnostics/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import gnnrisk
from gnnrisk.logger.record import read_run_folder
from tracking_helpers import TINY

PRIVATE = ["privacy=gap_ndp", "privacy.encoder_epochs=2", "privacy.epochs=3"]


def tags_of(tracked: Path) -> dict[str, str]:
    """A tracked run's tags.csv as a dict."""
    with open(tracked / "tags.csv", newline="") as handle:
        return {row["key"]: row["value"] for row in csv.DictReader(handle)}


def tracked_files(store: Path) -> set[str]:
    """Names of every file in a tracking store."""
    return {p.name for p in store.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_node_level_run_tracks_no_curve_when_it_is_in_diagnostics(tmp_path: Path) -> None:
    """gap_ndp (node-level DP): its curve is in diagnostics/, so the tracked run has none, says why, and
    names its guarantee; the edge-level gap_edp's curve (covered by epsilon) is tracked."""
    run_dir = tmp_path / "runs" / "ndp"
    result = gnnrisk.run([*TINY, *PRIVATE, "logger=csv"], run_dir=run_dir)
    assert (run_dir / "diagnostics" / "history.csv").is_file() and not (run_dir / "history.csv").exists()
    tracked = run_dir / "tracking" / "csv" / "runs" / "ndp"
    assert (tracked / "history.csv").read_text().strip() == "step,key,value"  # header only: no point
    assert not {"NOT_COVERED_BY_EPSILON.txt", "diagnostics.json"} & tracked_files(run_dir / "tracking")
    tags = tags_of(tracked)
    assert tags["guarantee.privacy_unit"] == "node" and tags["guarantee.mechanism"] == "gap_ndp"
    assert float(tags["guarantee.epsilon"]) == result.metrics["epsilon"]
    assert tags["guarantee.epsilon_covers"] == "model" and "diagnostics/" in tags["guarantee.training_curve"]

    edge_dir = tmp_path / "runs" / "edp"
    gnnrisk.run([*TINY, "privacy=gap_edp", "logger=csv"], run_dir=edge_dir)
    edge_history = (edge_dir / "tracking" / "csv" / "runs" / "edp" / "history.csv").read_text().splitlines()
    assert len(edge_history) > 1


def test_reader_never_opens_diagnostics(tmp_path: Path) -> None:
    """A run folder with a curve and a plot only under diagnostics/: the record has neither."""
    (tmp_path / "diagnostics").mkdir()
    (tmp_path / "config.yaml").write_text("model:\n  name: gcn\nseed: 0\n")
    (tmp_path / "metrics.json").write_text(json.dumps({
        "epsilon": 1.0, "privacy_unit": "node", "mechanism": "dpsgd_node", "test_auroc": 0.7,
        "history_file": "diagnostics/history.csv", "diagnostics_outside_epsilon": "diagnostics"}))
    (tmp_path / "diagnostics" / "history.csv").write_text("epoch,train_loss\n1,0.5\n2,0.4\n")
    (tmp_path / "diagnostics" / "curve.png").write_bytes(b"\x89PNG")
    (tmp_path / "reliability.png").write_bytes(b"\x89PNG")
    record = read_run_folder(tmp_path)
    assert record.curve == [] and [p.name for p in record.artifacts] == ["reliability.png"]
    assert record.metrics == {"epsilon": 1.0, "test_auroc": 0.7}
    assert record.params == {"model.name": "gcn", "seed": "0"}
    assert record.tags["guarantee.privacy_unit"] == "node" and record.tags["guarantee.epsilon"] == "1.0"


def test_curve_left_out_entirely_is_said_so(tmp_path: Path) -> None:
    """privacy.diagnostics=false: no curve anywhere, and the tracked run says it was not written."""
    run_dir = tmp_path / "runs" / "nodiag"
    gnnrisk.run([*TINY, *PRIVATE, "privacy.diagnostics=false", "logger=csv"], run_dir=run_dir)
    assert not (run_dir / "diagnostics").exists() and not (run_dir / "history.csv").exists()
    tags = tags_of(run_dir / "tracking" / "csv" / "runs" / "nodiag")
    assert tags["guarantee.training_curve"].endswith("not written (privacy.diagnostics=false)")


@pytest.mark.slow
def test_mlflow_and_tensorboard_track_no_curve_of_a_node_level_run(tmp_path: Path) -> None:
    """The same rule in the other stores: no `epoch/*` metric or scalar, the final metrics and the guarantee there."""
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "runs" / "mlflow"
    result = gnnrisk.run([*TINY, *PRIVATE, "logger=mlflow"], run_dir=run_dir)
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'tracking' / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("runs").experiment_id])
    assert not [key for key in run.data.metrics if key.startswith("epoch/")]
    assert run.data.metrics["epsilon"] == result.metrics["epsilon"]
    assert run.data.tags["guarantee.privacy_unit"] == "node"

    run_dir = tmp_path / "runs" / "tensorboard"
    gnnrisk.run([*TINY, *PRIVATE, "logger=tensorboard"], run_dir=run_dir)
    events = EventAccumulator(str(run_dir / "tracking" / "tensorboard" / "runs" / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "final/epsilon" in scalars and not [tag for tag in scalars if tag.startswith("epoch/")]
