"""Run real `gnnrisk-run -m` sweeps on tiny graphs in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
TINY = ["data.num_nodes=300", "train.epochs=5", "model.hidden_channels=16"]


def experiment_override(name: str) -> str:
    """`experiment=NAME` once configs/config.yaml lists an `experiment` default, `+experiment=NAME` before."""
    defaults = yaml.safe_load((CONFIG_DIR / "config.yaml").read_text()).get("defaults", [])
    listed = any(isinstance(d, dict) and any(k.endswith("experiment") for k in d) for d in defaults)
    return f"{'' if listed else '+'}experiment={name}"


def env() -> dict[str, str]:
    """One thread per process: the test machine is shared."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def sweep_command(sweep_dir: Path, *overrides: str) -> list[str]:
    """The command line of a multirun into `sweep_dir`."""
    return [sys.executable, "-m", "gnnrisk", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]


def run_sweep(sweep_dir: Path, *overrides: str, timeout: float = 600, expect: int = 0) -> subprocess.CompletedProcess:
    """Run a multirun to the end; fail the test with its output unless it exits with `expect`
    (0: every run finished; 3: the sweep ran to its end with failed runs)."""
    proc = subprocess.run(sweep_command(sweep_dir, *overrides), cwd=sweep_dir.parent, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == expect, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def metrics_files(sweep_dir: Path) -> dict[str, dict]:
    """Every run's metrics.json by run folder name (read again if a running job moves a folder meanwhile)."""
    for _ in range(20):
        try:
            return {p.parent.relative_to(sweep_dir).as_posix(): json.loads(p.read_text())
                    for p in sweep_dir.rglob("metrics.json")}
        except FileNotFoundError:  # a job renamed its staging folder (.incomplete) while the walk was in it
            continue
    raise AssertionError(f"{sweep_dir} kept changing while its run folders were read")
