"""Seeding, device and thread selection, so that the same config and seed give the same numbers, fast."""

from __future__ import annotations

import os
import random
import re
import sys
import tempfile
from typing import Any

import numpy as np
import torch

from gnnrisk.errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; `cpu`, `cuda` and `cuda:N` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device(name)
    if isinstance(name, str) and re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise ConfigError("device", name, "CUDA is not available here; use auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError("device", name, f"expected cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return torch.device(name)
    raise ConfigError("device", name, "expected auto, cpu, cuda or cuda:N")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a Slurm allocation), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def concurrent_workers(launcher: Any) -> int:
    """How many runs of this sweep share the machine: the joblib launcher's `n_jobs`, else 1."""
    n_jobs = launcher.get("n_jobs") if launcher is not None else None
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return usable_cpus() if n_jobs < 0 else max(n_jobs, 1)


def auto_threads(workers: int) -> int:
    """Torch CPU threads for one run: its share of the usable CPUs among the launcher's workers.

    Not the machine's current load: the thread count changes the last bits of some reductions, so
    a load-dependent choice would make the same config give different numbers from run to run.
    On a machine that other jobs keep busy, set `threads=1`: oversubscribed cores make OpenMP
    threads wait for each other (experiments/perf/bench_threads.py: 2.7x slower with 2 threads).
    """
    return max(1, usable_cpus() // max(workers, 1))


def apply_threads(setting: Any, workers: int = 1) -> int:
    """Set torch's CPU thread count from the `threads` setting (`auto` or a positive integer); return it."""
    if setting == "auto":
        threads = auto_threads(workers)
    elif isinstance(setting, int) and not isinstance(setting, bool) and setting >= 1:
        threads = setting
    else:
        raise ConfigError("threads", setting, "expected auto or an integer >= 1")
    torch.set_num_threads(threads)
    return threads


def remove_generated_templates() -> int:
    """Delete the source files PyG writes to the temp folder for each message-passing class; return the count.

    PyG renders a `propagate` module per conv class into `tempfile` (`torch_geometric/template.py`) and
    never removes it: about 10 files per process. Once imported, the module lives in `sys.modules` and
    no longer needs its file, so each run removes the files of the modules its process loaded.
    """
    folder = os.path.realpath(tempfile.gettempdir())
    removed = 0
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name.startswith("torch_geometric.") and path and os.path.dirname(os.path.realpath(path)) == folder
                and os.path.basename(path).startswith(name + "_")):
            try:
                os.remove(path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed
