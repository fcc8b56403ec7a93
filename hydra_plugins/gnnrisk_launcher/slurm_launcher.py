"""The Slurm launcher of hydra-submitit-launcher, with a lost task told in one line instead of a traceback.

submitit raises `UncompletedJobError` when an array task ended without output (cancelled, pre-empted,
timed out). The sweep then stops waiting; the array's other tasks go on in Slurm and write their run
folders. This launcher notes the task (`gnnrisk.progress.lost_tasks`) and returns, so that
`gnnrisk-run` ends with one line per lost task and exit code 3, as for runs that failed in Python.
Without hydra-submitit-launcher installed this module defines nothing (Hydra scans it regardless).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gnnrisk.progress import note_lost_task

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurmLauncher
except ImportError:  # the launcher is an optional dependency (pip install gnnrisk[slurm])
    _SubmititSlurmLauncher = None

LOST = "UncompletedJobError"  # submitit.core.utils.UncompletedJobError, matched by name: submitit is optional

if _SubmititSlurmLauncher is not None:

    class SlurmLauncher(_SubmititSlurmLauncher):
        """submitit's Slurm launcher; a task that ended without output is noted, not raised."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
            """Submit the batch as one array and wait for it; a lost task ends the wait with a note."""
            try:
                return super().launch(job_overrides, initial_job_idx)
            except Exception as err:
                if type(err).__name__ != LOST:
                    raise
                note_lost_task(str(err))
                return []
