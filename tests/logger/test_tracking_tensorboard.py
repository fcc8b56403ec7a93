"""`logger=tensorboard`: a sweep through `gnnrisk.sweep`, its event files read back with TensorBoard's reader."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

import gnnrisk  # noqa: E402
from tracking_helpers import EPOCHS, TINY, history_columns, numeric_metrics, run_dirs  # noqa: E402


def events_of(folder: Path):
    """TensorBoard's EventAccumulator on one tracked run's folder, loaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gnnrisk.sweep` over two seeds with `logger=tensorboard`: its sweep folder."""
    sweep_dir = tmp_path_factory.mktemp("tensorboard") / "study_b"
    runs = gnnrisk.sweep({"seed": [0, 1]}, sweep_dir=sweep_dir, overrides=[*TINY, "logger=tensorboard"])
    assert (runs["status"] == "finished").all()
    return sweep_dir


def test_one_event_folder_per_job_with_curve_final_metrics_and_plots(sweep: Path) -> None:
    """Scalars epoch/* (one per epoch, step = epoch) and final/* (= metrics.json), the plot as an image,
    the params and the guarantee as text; the plots copied next to the events."""
    store = sweep / "tracking" / "tensorboard" / "study_b"
    folders = run_dirs(sweep)
    assert sorted(p.name for p in store.iterdir()) == sorted(f.name for f in folders)
    for folder in folders:
        events = events_of(store / folder.name)
        tags = events.Tags()
        curve = history_columns(folder)
        for key in ("train_loss", "val_loss", "val_acc"):
            points = events.Scalars(f"epoch/{key}")
            assert [p.step for p in points] == list(range(1, EPOCHS + 1))
            assert [p.value for p in points] == pytest.approx(curve[key], rel=1e-6)
        truth = numeric_metrics(folder)
        finals = {t[len("final/"):]: events.Scalars(t)[-1].value for t in tags["scalars"] if t.startswith("final/")}
        assert set(finals) == set(truth)
        assert finals == pytest.approx(truth, rel=1e-6, abs=1e-30)  # float32 scalars
        assert tags["images"] == ["plots/reliability"]
        assert {"params/text_summary", "guarantee/text_summary"} <= set(tags["tensors"])
        params = events.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
        assert "| model.name | gcn |" in params and "| logger.name | tensorboard |" in params
        assert (store / folder.name / "artifacts" / "reliability.png").is_file()
