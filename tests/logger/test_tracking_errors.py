"""Tracking's refusals (before any training, one line) and a tracking failure after the run (the run stays)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import gnnrisk
from gnnrisk.errors import ConfigError
from gnnrisk.logger import validate_logger
from gnnrisk.logger.csv_logger import CsvLogger
from tracking_helpers import TINY, cli


@pytest.mark.parametrize("name,module,dist", [("mlflow", "sqlalchemy", "sqlalchemy"),
                                              ("mlflow", "mlflow", "mlflow-skinny"),
                                              ("tensorboard", "tensorboard", "tensorboard")])
def test_missing_backend_names_the_extra(name: str, module: str, dist: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger whose package is not installed: one line naming the logger, the package and the extra."""
    monkeypatch.setitem(sys.modules, module, None)  # what importlib reports for a module that is not installed
    with pytest.raises(ConfigError) as caught:
        validate_logger(OmegaConf.create({"name": name, "dir": None}))
    message = str(caught.value)
    assert message.startswith(f"logger='{name}' is not allowed") and "\n" not in message
    assert f"missing: {dist}" in message and "pip install 'gnnrisk[tracking]'" in message


def test_missing_backend_refuses_the_run_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the API: the ConfigError comes before any training (no metrics.json, no curve)."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="gnnrisk\\[tracking\\]"):
        gnnrisk.run([*TINY, "logger=tensorboard"], run_dir=run_dir)
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "history.csv").exists()


def test_dir_check_leaves_nothing_behind(tmp_path: Path) -> None:
    """A store folder that does not exist yet is accepted without creating it (or any probe)."""
    validate_logger(OmegaConf.create({"name": "csv", "dir": str(tmp_path / "a" / "b")}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_dir_is_refused(tmp_path: Path) -> None:
    """A read-only folder as logger.dir: refused naming logger.dir."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="^logger.dir="):
            validate_logger(OmegaConf.create({"name": "csv", "dir": str(locked / "store")}))
    finally:
        locked.chmod(0o755)


def test_tracking_failure_keeps_the_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that fails after the run: the run is finished (metrics.json, no error.json), one log line says so."""
    def broken(self, record, target) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(CsvLogger, "log", broken)
    run_dir = tmp_path / "run"
    result = gnnrisk.run([*TINY, "audit=none", "logger=csv"], run_dir=run_dir)
    assert (run_dir / "metrics.json").is_file() and not (run_dir / "error.json").exists()
    assert result.metrics["epochs"] == 3
    lines = [line for line in (run_dir / "app.log").read_text().splitlines() if "tracking failed" in line]
    assert len(lines) == 1 and "OSError: disk full" in lines[0] and "the run itself finished" in lines[0]


def test_sweep_with_unwritable_dir_is_refused_before_its_first_job(tmp_path: Path) -> None:
    """`-m ... logger.dir=/proc/x`: one line naming logger.dir, exit 2, no sweep folder (the preflight)."""
    sweep = tmp_path / "sweep"
    proc = cli("-m", f"hydra.sweep.dir={sweep}", "logger=csv", "logger.dir=/proc/x", "seed=0,1", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gnnrisk: error: logger.dir='/proc/x' is not allowed")
    assert not sweep.exists()
