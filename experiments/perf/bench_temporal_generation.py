"""Benchmark: generating the evolving population (data=synthetic_temporal), 12 periods, at 5k and 1M nodes.

Targets (issue "Risk over time"): 5,000 nodes x 12 periods in seconds on 2 cores; 1M nodes x 12 periods
within a laptop's memory. Each size runs in a fresh process (its peak RSS is its own); the 5k case is
repeated and the median reported; the snapshot generator (data=synthetic) of the same size runs beside
it for scale.

    python experiments/perf/bench_temporal_generation.py [--repeats 5] [--skip-1m]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def generate(num_nodes: int, temporal: bool) -> dict:
    """Build the population (ties per period, outcomes, records, features, splits) and time it."""
    from omegaconf import OmegaConf

    from gnnrisk.data import build_dataset

    cfg = OmegaConf.load(CONFIGS / "synthetic.yaml")
    if temporal:
        cfg = OmegaConf.merge(cfg, OmegaConf.load(CONFIGS / "synthetic_temporal.yaml"))
        cfg.pop("defaults")
    cfg.num_nodes = num_nodes
    start = time.perf_counter()
    data = build_dataset(cfg, seed=0)
    seconds = time.perf_counter() - start
    ties = int(data.tie_index.size(1)) if temporal else int(data.num_edges) // 2
    return {"nodes": num_nodes, "periods": int(getattr(data, "num_periods", 1) or 1), "ties": ties,
            "seconds": seconds, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def in_subprocess(num_nodes: int, temporal: bool) -> dict:
    """One generation in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--child", str(num_nodes), *(["--temporal"] if temporal else [])],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print one line per measurement."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, default=None)
    parser.add_argument("--temporal", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-1m", action="store_true")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(generate(args.child, args.temporal)))
        return
    runs = [(in_subprocess(5000, True), in_subprocess(5000, False)) for _ in range(args.repeats)]
    t = statistics.median(r[0]["seconds"] for r in runs)
    s = statistics.median(r[1]["seconds"] for r in runs)
    first = runs[0][0]
    print(f"5k nodes x {first['periods']} periods: median {t:.3f} s over {args.repeats} runs "
          f"({first['ties']:,} tie intervals); one snapshot of 5k nodes: median {s:.3f} s; "
          f"ratio {t / s:.1f}x; peak RSS {first['peak_rss_gb']:.2f} GB")
    if not args.skip_1m:
        big = in_subprocess(1_000_000, True)
        print(f"1M nodes x {big['periods']} periods: {big['seconds']:.1f} s, {big['ties']:,} tie intervals, "
              f"peak RSS {big['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
    main()
