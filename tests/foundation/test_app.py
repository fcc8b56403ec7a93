"""The Hydra app end to end: the results contract, reproducibility, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from foundation_helpers import compose_cfg
from gnnrisk.pipeline import run_experiment

SMALL = ["data.num_nodes=400", "train.epochs=5"]
REQUIRED = ("test_acc", "test_auroc", "val_acc", "train_seconds", "epsilon", "delta", "model", "dataset", "seed",
            "test_auroc_true", "delta_sp", "delta_eo", "delta_eo_true", "threads")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `python -m gnnrisk` the way a user would."""
    return subprocess.run([sys.executable, "-m", "gnnrisk", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_cli_run_writes_the_results_contract(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*SMALL, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in REQUIRED:
        assert key in metrics, key
    assert metrics["epsilon"] is None and metrics["model"] == "gcn" and metrics["dataset"] == "synthetic"
    assert all(not isinstance(v, (dict, list)) for v in metrics.values())  # flat
    env = json.loads((run_dir / "env.json").read_text())
    for key in ("python", "torch", "torch-geometric", "opacus", "hydra-core", "git_commit"):
        assert key in env
    assert "num_nodes: 400" in (run_dir / "config.yaml").read_text()
    assert "test_auroc" in proc.stdout  # the console summary


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(tmp_path):
    cfg = compose_cfg(*SMALL, "model=sage", "seed=3")
    a = run_experiment(cfg, tmp_path / "a")
    b = run_experiment(cfg, tmp_path / "b")
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b
    c = run_experiment(compose_cfg(*SMALL, "model=sage", "seed=4"), tmp_path / "c")
    assert c["test_auroc"] != a["test_auroc"]


@pytest.mark.slow
def test_minibatch_training_runs_and_learns(tmp_path):
    cfg = compose_cfg("data.num_nodes=2000", "train.epochs=15", "train.batch_size=256", "model=sage")
    m = run_experiment(cfg, tmp_path)
    rows = (tmp_path / "history.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows]
    assert losses[-1] < 0.9 * losses[0]
    assert m["test_auroc_true"] > 0.55  # better than chance after a few epochs on 2000 nodes


# One real process here (error.json written, no metrics); every field's refusal is checked in process by
# tests/foundation/test_bad_input.py, and a handful more as real processes there.
@pytest.mark.parametrize("override, field", [("train.lr=0", "train.lr")])
@pytest.mark.slow
def test_bad_config_is_one_clear_line(tmp_path, override, field):
    proc = run_cli(*SMALL, override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"gnnrisk: error: {field}=" in proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert "error" in json.loads((tmp_path / "run" / "error.json").read_text())


def test_unknown_group_member_is_one_line_with_the_options(tmp_path):
    proc = run_cli("model=transformer", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "gnnrisk: error: model='transformer' is not allowed: expected one of gat, gcn, gconv_gru, gconv_lstm, gin, "
        "hetero_gat, hetero_gcn, hetero_sage, hgt, lstm, mlp, network_exposure, person_history, pro_hotspot, "
            "retro_hotspot, rgcn, sage, sepp"]


@pytest.mark.slow
def test_failed_run_leaves_finished_runs_alone(tmp_path):
    good = tmp_path / "good"
    assert run_cli(*SMALL, f"hydra.run.dir={good}", cwd=tmp_path).returncode == 0
    before = (good / "metrics.json").read_bytes()
    bad = run_cli(*SMALL, "data.num_nodes=-1", f"hydra.run.dir={good}", cwd=tmp_path)
    assert bad.returncode == 2
    assert (good / "metrics.json").read_bytes() == before  # the finished result survives a failed rerun
    assert not list(good.glob(".*.tmp"))


@pytest.mark.slow
def test_missing_data_file_is_a_clear_error(tmp_path):
    proc = run_cli("data=edgelist", f"data.edges_path={tmp_path / 'nope.csv'}",
                   f"data.nodes_path={tmp_path / 'nodes.csv'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nope.csv" in proc.stderr or "nodes.csv" in proc.stderr


def test_help_describes_gnnrisk(tmp_path):
    """`gnnrisk-run --help` is gnnrisk's own page: what it does, every group with its members, examples."""
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("gnnrisk-run: train a GNN risk model")
    assert "privacy: dp_mlp, dpdgc_edp, dpdgc_kndp, dpdgc_ndp, dpsgd_node, edgerand" in proc.stdout and "gnnrisk-run -m experiment=quick" in proc.stdout
    assert "Powered by Hydra" not in proc.stdout


def test_command_line_imports_no_heavy_stage_before_a_job():
    """`gnnrisk-run` (gnnrisk.app, its preflight and callbacks) loads no torch, PyG, pandas or matplotlib until a job
    runs, so that `--help` and a refused command line answer quickly."""
    code = ("import sys, gnnrisk.app, gnnrisk.preflight, gnnrisk.progress; print(sorted(m for m in ('torch', "
            "'torch_geometric', 'pandas', 'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["[]"], proc.stdout + proc.stderr
