"""Suite-wide hooks."""

from __future__ import annotations

import os

import pytest

from gnnrisk.utils.runtime import remove_generated_templates


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n N`), pin each worker to its own CPU, so that its runs (and their subprocesses)
    see one usable CPU and `threads=auto` gives them one thread: N workers never oversubscribe N cores."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if worker and len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[int(worker[2:]) % len(cpus)]})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no PyG-generated module files in the temp folder (the app does the same after each run)."""
    remove_generated_templates()
