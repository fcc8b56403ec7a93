"""`hydra/launcher=slurm` on a real Slurm cluster: a sweep with a job cancelled mid-run is finished by a re-run.

Skipped unless `sinfo` is on PATH and shows an idle node on this host (the sweep folder is under pytest's
tmp_path, which only a job on this machine can see). The test never starts a cluster: start the one-node
cluster with `experiments/slurm/local_cluster.sh` (as root). submitit polls job states with `sacct`, so the
cluster needs job accounting (slurmdbd), which that script sets up. Run it with
`pytest -s -m slow tests/sweeps/test_slurm.py` to see the job ids.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from sweep_helpers import env, metrics_files, run_sweep, sweep_command

SLOW_EPOCHS = 12000  # 13-30 s of training on 200 nodes here: long enough to be cancelled while it trains
EPOCHS = f"train.epochs=5,6,{SLOW_EPOCHS}"  # 3 runs; the slow one is the last task of the job array
RUN = ["data.num_nodes=200", "model.hidden_channels=16", "train.patience=100000", "threads=1", EPOCHS]


def _sh(*cmd: str, timeout: float = 30) -> str:
    """stdout of a Slurm command; AssertionError with its stderr when it fails."""
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr.strip()}"
    return proc.stdout


def _idle_partition() -> str:
    """The partition of an idle node on this host; pytest.skip (with the reason) when there is none."""
    missing = [c for c in ("sinfo", "squeue", "scancel", "sacct") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"no Slurm client commands on PATH ({', '.join(missing)}): start a cluster with "
                    "experiments/slurm/local_cluster.sh")
    try:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %P %t"], check=False, capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer within 20 s (slurmctld down?)")
    if proc.returncode != 0:
        pytest.skip(f"sinfo failed: {proc.stderr.strip()[:200]}")
    host = socket.gethostname().split(".")[0]
    idle = [line.split() for line in proc.stdout.splitlines() if len(line.split()) == 3]
    idle = [(node, part.rstrip("*")) for node, part, state in idle if state == "idle"]
    here = [part for node, part in idle if node == host]
    if not here:
        pytest.skip(f"no idle Slurm node on this host ({host}); sinfo shows idle nodes {idle or 'none'}")
    return here[0]


def _our_jobs(name: str) -> list[tuple[str, str]]:
    """(job id, state) of this test's queued jobs, e.g. ('12_2', 'RUNNING')."""
    out = _sh("squeue", "-h", "-r", "-n", name, "-o", "%i %T")
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def _wait_drained(name: str, timeout: float = 120) -> None:
    """Wait until none of this test's jobs is queued or running."""
    end = time.monotonic() + timeout
    while _our_jobs(name):
        assert time.monotonic() < end, f"jobs still queued after {timeout} s: {_our_jobs(name)}"
        time.sleep(1)


def _array_ids(sweep: Path) -> list[str]:
    """The sbatch job ids (job arrays) submitit recorded in SWEEP/.submitit, oldest first."""
    ids = {p.name.split("_")[0] for p in (sweep / ".submitit").iterdir() if p.name[0].isdigit()}
    return sorted(ids, key=int)


def _sacct_states(job: str) -> str:
    """One line per array task: JobID|State|NodeList from sacct."""
    out = _sh("sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID,State,NodeList")
    return " ".join(out.split())


def _stamps(sweep: Path) -> dict[str, int]:
    """mtime (ns) of every run's metrics.json and config.yaml: a recomputed run rewrites both."""
    return {p.relative_to(sweep).as_posix(): p.stat().st_mtime_ns
            for name in ("metrics.json", "config.yaml") for p in sweep.glob(f"*/{name}")}


@pytest.mark.slow
def test_slurm_sweep_cancelled_job_is_resumed(tmp_path: Path):
    """3 runs as a Slurm job array; the slow one is scancel'ed while it trains; a re-run finishes it alone."""
    partition = _idle_partition()
    name = f"gnnrisk-test-{uuid.uuid4().hex[:8]}"  # the jobs' name: this test's jobs, and only they, are ours
    launcher = ["hydra/launcher=slurm", f"hydra.launcher.partition={partition}", "hydra.launcher.cpus_per_task=1",
                "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=5", f"hydra.launcher.name={name}"]
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    slow_run = f"data.num_nodes=200,model.hidden_channels=16,threads=1,train.epochs={SLOW_EPOCHS},train.patience=100000"
    start = time.monotonic()
    print(f"\n[slurm] partition {partition}, job name {name}, sweep {sweep}")
    proc = None
    try:
        # 1. the sweep; cancel the slow task once it trains (its run folder has env.json, written at run start)
        with (tmp_path / "sweep1.log").open("w") as log:
            proc = subprocess.Popen(sweep_command(sweep, *launcher, *RUN), cwd=tmp_path, env=env(),
                                    stdout=log, stderr=subprocess.STDOUT, text=True)
        seen: dict[str, str] = {}
        cancelled = None
        end = time.monotonic() + 150
        while cancelled is None:
            assert proc.poll() is None, (tmp_path / "sweep1.log").read_text()[-3000:]
            assert time.monotonic() < end, f"the slow task was never seen training: {seen}"
            for job, state in _our_jobs(name):
                if seen.get(job) != state:
                    print(f"[slurm] {time.monotonic() - start:5.1f}s squeue: {job} {state}")
                    seen[job] = state
                if job.endswith("_2") and state == "RUNNING" and (sweep / slow_run / "env.json").exists():
                    time.sleep(2)  # well into training
                    _sh("scancel", job)
                    cancelled = job
                    print(f"[slurm] {time.monotonic() - start:5.1f}s scancel {job} (train.epochs={SLOW_EPOCHS}, "
                          f"training)")
            time.sleep(0.5)
        rc = proc.wait(timeout=150)
        out1 = (tmp_path / "sweep1.log").read_text()
        _wait_drained(name)
        lines = out1.splitlines()
        error = [ln for ln in lines if ln.startswith("gnnrisk: error: a cluster task ended without output")]
        print(f"[slurm] {time.monotonic() - start:5.1f}s first sweep exited with {rc}: {' '.join(error[-1:])}")
        first = _array_ids(sweep)
        assert len(first) == 1, first
        print(f"[slurm] first sweep: sbatch job {first[0]}; sacct: {_sacct_states(first[0])}")
        assert f"{cancelled}|CANCELLED" in _sacct_states(first[0])

        # the cancelled run has a folder without metrics.json; the two others finished
        # (the launcher reports the cancelled task in one line, exit code 3, no traceback)
        assert rc == 3 and len(error) == 1 and "CANCELLED" in error[0] and "Traceback" not in out1
        final = [ln for ln in lines if ln.startswith("[sweep]")][-1]
        print(f"[slurm] first sweep's last progress line: {final}")
        assert "1 lost, 0 running" in final, final  # the progress line counts the cancelled task
        done = sorted(metrics_files(sweep))
        assert len(done) == 2 and slow_run not in done, done
        assert (sweep / slow_run / "config.yaml").exists() and not (sweep / slow_run / "metrics.json").exists()
        kept = _stamps(sweep)
        kept = {k: v for k, v in kept.items() if not k.startswith(slow_run + "/")}
        print(f"[slurm] after the first sweep: finished {done}; cancelled {slow_run} has no metrics.json")

        # 2. the same command again: the two finished runs are skipped, the cancelled one is run to its end
        time.sleep(0.05)
        proc2 = run_sweep(sweep, *launcher, *RUN, timeout=170)
        _wait_drained(name)
        second = [j for j in _array_ids(sweep) if j not in first]
        assert len(second) == 1, second
        print(f"[slurm] {time.monotonic() - start:5.1f}s re-run: sbatch job {second[0]}; sacct: "
              f"{_sacct_states(second[0])}")
        print(f"[slurm] re-run progress: {[ln for ln in proc2.stderr.splitlines() if ln.startswith('[sweep]')][-1]}")
        assert len(metrics_files(sweep)) == 3
        stamps = _stamps(sweep)
        assert {k: stamps[k] for k in kept} == kept                 # the finished runs were not recomputed
        assert stamps[f"{slow_run}/metrics.json"] > max(kept.values())
        skips = [line.strip() for p in sorted((sweep / ".submitit").glob(f"{second[0]}_*/*_log.*"))
                 for line in p.read_text().splitlines() if "skipping" in line and "[" in line]
        skips = sorted({s.split("] - ")[-1] for s in skips})
        for s in skips:
            print(f"[slurm] re-run job log: {s}")
        assert len(skips) == 2 and all(slow_run not in s for s in skips)
        print(f"[slurm] all 3 runs have metrics.json; the 2 earlier ones untouched; "
              f"{time.monotonic() - start:.1f}s in all")
    finally:
        if proc is not None and proc.poll() is None:  # the first sweep, when the test failed while it waited
            proc.kill()
            proc.wait(timeout=30)
        subprocess.run(["scancel", "-n", name], check=False, capture_output=True, timeout=30)  # this test's jobs only
