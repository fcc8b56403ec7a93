"""The results contract: what every run folder holds (metrics.json, config.yaml, env.json, ...)."""

from __future__ import annotations

import hashlib
import json

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gnnrisk.utils.files import write_json_atomic, write_text_atomic

METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
HISTORY_FILE = "history.csv"
ERROR_FILE = "error.json"
# Touched when a sweep skips a run that finished earlier, so that progress can tell its own skips apart.
SKIP_MARKER = ".skipped"
# Where the post-training stages write while they run; moved into the run folder once all succeed.
STAGING_DIR = ".incomplete"
# What a private run computed during training from the data its epsilon protects: kept apart, labelled.
DIAGNOSTICS_DIR = "diagnostics"
DIAGNOSTICS_FILE = "diagnostics.json"
DIAGNOSTICS_LABEL = "NOT_COVERED_BY_EPSILON.txt"
RUN_FILES = (METRICS_FILE, ERROR_FILE, CONFIG_FILE)  # a folder holding one of these is a run's folder
DIAGNOSTICS_NOTE = """NOT COVERED BY THE RUN'S EPSILON.

The files in this folder were computed during training by {mechanism} (node-level DP, epsilon {epsilon})
from the private labels and features themselves (training loss, validation loss and accuracy, per-stage
diagnostics). The reported epsilon covers the released model only; these records are the researcher's
own view of the private data. Do not publish them as part of a private release.
Set privacy.diagnostics=false to omit them.
"""

PACKAGES = ("gnnrisk", "torch", "torch-geometric", "opacus", "hydra-core", "omegaconf", "numpy",
            "scipy", "scikit-learn", "networkx", "pandas")


def _version(dist: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> dict[str, Any]:
    """The git commit of the gnnrisk source tree, and whether it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5)
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def environment() -> dict[str, Any]:
    """Versions of python and the packages that decide the numbers, the platform, the git commit."""
    import torch

    env: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    env.update({dist: _version(dist) for dist in PACKAGES})
    env["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
    env["torch_num_threads"] = torch.get_num_threads()
    env.update(git_commit())
    return env


# Longest run-folder name (bytes); file systems allow 255, and a sweep's overrides can be longer.
MAX_DIRNAME_BYTES = 200


def run_dirname(overrides: str) -> str:
    """A sweep run's folder name: its overrides as they are when short, else a prefix and a hash of them all.

    Deterministic, so a re-run finds the same folder (resume); Hydra keeps the full overrides in
    the folder's `.hydra/overrides.yaml`.
    """
    raw = str(overrides).encode()
    if len(raw) <= MAX_DIRNAME_BYTES:
        return str(overrides)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return raw[: MAX_DIRNAME_BYTES - len(digest) - 1].decode(errors="ignore") + "-" + digest


def write_run_start(run_dir: Path, cfg: DictConfig) -> None:
    """Write the resolved config and the environment before the run does any work."""
    write_text_atomic(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    write_json_atomic(run_dir / ENV_FILE, environment())


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """The training curve, one row per epoch."""
    keys = list(history[0])
    lines = [",".join(keys)] + [",".join(f"{row[k]:.6g}" if isinstance(row[k], float) else str(row[k])
                                         for k in keys) for row in history]
    write_text_atomic(path, "\n".join(lines) + "\n")


PRIVATE_RECORD_UNITS = ("node", "person", "incident")  # units whose labels and features are private


def outside_budget(privacy: dict[str, Any]) -> bool:
    """Whether training-time records (curve, diagnostics) read data that the run's epsilon protects.

    Under node-level DP (and the city's person and incident units) the labels and features are private,
    so a loss or accuracy computed on them during training is not covered. Under edge-level DP they are public and the model only sees the
    released graph or the private aggregations: the curve is post-processing, covered by epsilon.
    """
    return privacy.get("privacy_unit") in PRIVATE_RECORD_UNITS and privacy.get("epsilon") is not None


def write_training_record(run_dir: Path, history: list[dict[str, float]], diagnostics: dict[str, Any],
                          privacy: dict[str, Any], keep_diagnostics: bool) -> dict[str, Any]:
    """Write the training curve where its privacy status says, and return the metrics that say where it went.

    Covered (or non-private) curves go to history.csv. Curves and diagnostics that epsilon does not
    cover go to diagnostics/ with a label file, or nowhere when `keep_diagnostics` is false.
    """
    apart = outside_budget(privacy)
    if apart and not keep_diagnostics:
        return {"history_file": None, "diagnostics_outside_epsilon": None}
    folder = run_dir / DIAGNOSTICS_DIR if apart else run_dir
    written = None
    if history:
        write_history(folder / HISTORY_FILE, history)
        written = (folder / HISTORY_FILE).relative_to(run_dir).as_posix()
    if apart and (history or diagnostics):
        if diagnostics:
            write_json_atomic(folder / DIAGNOSTICS_FILE, diagnostics)
        write_text_atomic(folder / DIAGNOSTICS_LABEL, DIAGNOSTICS_NOTE.format(
            mechanism=privacy.get("mechanism"), epsilon=privacy.get("epsilon")))
    return {"history_file": written, "diagnostics_outside_epsilon": (DIAGNOSTICS_DIR if apart else None)}


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write the flat metrics.json last: its presence marks the run as finished."""
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    write_json_atomic(run_dir / METRICS_FILE, metrics)


def write_error(run_dir: Path, error: BaseException, details: str | None = None) -> None:
    """Record why a run failed, next to its config."""
    write_json_atomic(run_dir / ERROR_FILE, {"error": str(error), "type": type(error).__name__,
                                             "details": details})


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Every folder under `sweep_dir` that holds a run's results file (Hydra's own `.hydra/` excluded)."""
    found = {path.parent for name in RUN_FILES for path in sweep_dir.rglob(name)
             if ".hydra" not in path.relative_to(sweep_dir).parts}
    return sorted(found)


def load_json_object(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the JSON object in `path`, None), or (None, why it is not one)."""
    try:
        with open(path) as fh:
            obj = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    if not isinstance(obj, dict):
        return None, f"holds a JSON {type(obj).__name__}, not an object of metrics"
    return obj, None
