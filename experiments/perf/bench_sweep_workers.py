"""Speed-up of a sweep on 2 local joblib workers over 1: an 8-run sweep, same runs, wall-clock time.

Usage:  python experiments/perf/bench_sweep_workers.py [--runs 8] [--nodes 3000] [--epochs 400]
Each run trains GraphSAGE full-batch on the synthetic population for a fixed number of epochs (early
stopping off) with one thread per worker, so both settings do the same work. Target: >= 1.6x.
The 1-worker sweep runs its jobs in the launching process (joblib n_jobs=1); the 2-worker sweep pays
for starting two worker processes, as a user's sweep does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(out: Path, workers: int, runs: int, nodes: int, epochs: int) -> float:
    """Wall-clock seconds of one `gnnrisk-run -m` sweep of `runs` seeds on `workers` joblib workers."""
    cmd = [sys.executable, "-m", "gnnrisk", "-m", f"hydra.sweep.dir={out}", "hydra/launcher=parallel",
           f"hydra.launcher.n_jobs={workers}", "model=sage", f"data.num_nodes={nodes}",
           f"train.epochs={epochs}", f"train.patience={epochs}", f"seed=range({runs})"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    tic = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - tic
    finished = list(out.rglob("metrics.json"))
    if len(finished) != runs:
        raise RuntimeError(f"{out}: {len(finished)} of {runs} runs finished")
    return seconds


def mean_train_seconds(out: Path) -> float:
    """Mean training time of the sweep's runs, as each run measured it."""
    values = [json.loads(p.read_text())["train_seconds"] for p in out.rglob("metrics.json")]
    return sum(values) / len(values)


def main() -> None:
    """Run both sweeps and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--nodes", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=400)  # ~10 s runs: worker start-up is amortised as in real sweeps
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gnnrisk-bench-") as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            seconds = sweep(out, workers, args.runs, args.nodes, args.epochs)
            rows.append((workers, seconds, mean_train_seconds(out)))
    base = rows[0][1]
    print(f"{args.runs}-run sweep, sage, {args.nodes} nodes, {args.epochs} epochs, 1 thread per worker, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after")
    print(f"{'workers':>7} | {'wall s':>7} | {'train s/run':>11} | {'speed-up':>8}")
    print("-" * 44)
    for workers, seconds, per_run in rows:
        print(f"{workers:>7} | {seconds:7.1f} | {per_run:11.2f} | {base / seconds:7.2f}x")
    print(f"target: >= 1.6x with 2 workers -> {'met' if base / rows[1][1] >= 1.6 else 'NOT met'}")


if __name__ == "__main__":
    main()
