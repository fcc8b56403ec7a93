"""examples/plugin_example installed as a user would (pip, its own pyproject), then run, swept, reported, checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from example_install import install_example

pytestmark = pytest.mark.slow  # a pip install and four gnnrisk processes: ~1-2 min on 2 cores


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plug-in pip-installed into its own folder (not the venv), from a copy of its source."""
    return install_example(tmp_path_factory.mktemp("plugin"))


def gnnrisk(site: Path, cwd: Path, *args: str, module: str = "gnnrisk") -> subprocess.CompletedProcess:
    """A gnnrisk command run with the plug-in on PYTHONPATH, as after `pip install`."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", module, *args], check=False, capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=900)


def test_plugin_runs_in_a_grid_beside_builtins_and_in_the_report(site, tmp_path):
    """`gnnrisk-run -m privacy=rr_edges,edgerand model=gcn,appnp data=blocks attack=[confidence_gap,lsa]`: the
    plug-ins (mechanism, model, dataset, attack) run beside the built-ins; the report lists them side by side."""
    sweep = tmp_path / "sweep"
    proc = gnnrisk(site, tmp_path, "-m", "privacy=rr_edges,edgerand", "model=gcn,appnp", "data=blocks", "data.num_nodes=200",
                   "privacy.epsilon=2", "train.epochs=30", "attack=[confidence_gap,lsa]", "attack.lsa.num_pairs=200",
                   f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert {(m["mechanism"], m["model"]) for m in metrics} == {(p, m) for p in ("rr_edges", "edgerand")
                                                                for m in ("gcn", "appnp")}
    assert all(m["test_acc"] > 0.5 for m in metrics if m["model"] == "appnp")  # blocks: 2 classes, signal in features
    assert all(m["dataset"] == "blocks" and m["epsilon"] == 2.0 and m["privacy_unit"] == "edge" for m in metrics)
    assert all(-1 <= m["attack_confidence_gap"] <= 1 and "attack_lsa_auroc" in m for m in metrics)
    rr = next(m for m in metrics if m["mechanism"] == "rr_edges" and m["model"] == "gcn")
    assert abs(rr["flip_prob"] - 1 / (2.718281828459045 ** 2 + 1)) < 1e-9 and rr["epsilon_covers"] == "graph"
    report = gnnrisk(site, tmp_path, str(sweep), "--no-html", module="gnnrisk.report.cli")
    assert report.returncode == 0, report.stderr[-2000:]
    tables = "\n".join(p.read_text() for p in (sweep / "report").rglob("*.md"))
    assert "rr_edges" in tables and "edgerand" in tables and "appnp" in tables


def test_plugin_passes_gnnrisk_check(site, tmp_path):
    """`gnnrisk-check privacy=rr_edges data=blocks`: every check passes, check.json says so."""
    proc = gnnrisk(site, tmp_path, "privacy=rr_edges", "data=blocks", "data.num_nodes=300", "--out",
                   str(tmp_path / "check"), module="gnnrisk.check.cli")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    report = json.loads((tmp_path / "check" / "check.json").read_text())
    assert report["passed"] and {c["check"]: c["status"] for c in report["checks"]} == {
        "interface": "pass", "determinism": "pass", "accounting": "pass", "audit": "pass"}


def test_plugin_with_bad_config_is_one_line(site, tmp_path):
    """A bad value of the plug-in's own config is refused in one line, exit 2, by the plug-in's validation."""
    proc = gnnrisk(site, tmp_path, "privacy=rr_edges", "privacy.epsilon=-1", "data=blocks", "data.num_nodes=50",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "gnnrisk: error: privacy.epsilon=-1 is not allowed")
    assert "Traceback" not in proc.stderr
