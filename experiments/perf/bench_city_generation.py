"""Benchmark: city generation time and peak memory at 1k, 10k, 100k and 1M people; and the EM recovery table.

Each size runs in a fresh process, so that its peak resident memory (getrusage ru_maxrss) is its own;
`baseline` is that process's resident memory after the imports, before generating.

    python experiments/perf/bench_city_generation.py                    # 1k, 10k, 100k, 1M people
    python experiments/perf/bench_city_generation.py --sizes 1000 10000
    python experiments/perf/bench_city_generation.py --recovery 100     # EM on 100 Mohler worlds (~1 min)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def generate(num_people: int, seed: int) -> dict:
    """Build one city with the default knobs and report its size, time and memory."""
    from gnnrisk.data.city import generate_city

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    data = generate_city({"num_people": num_people}, seed)
    seconds = time.perf_counter() - start
    inc = data["incident"]
    return {"people": num_people, "places": int(data["place"].num_nodes),
            "ties": int(data["person", "knows", "person"].edge_index.shape[1]),
            "frequents": int(data["person", "frequents", "place"].edge_index.shape[1]),
            "incidents": int(inc.num_nodes), "recorded": int(inc.recorded.sum()), "seconds": seconds,
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "baseline_gb": baseline}


def in_subprocess(num_people: int, seed: int) -> dict:
    """One generation in a fresh interpreter."""
    out = subprocess.run([sys.executable, __file__, "--child", str(num_people), "--seed", str(seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def recovery(replicates: int, horizon: float) -> None:
    """Print the EM recovery table for Mohler et al.'s (2011) settings."""
    from gnnrisk.data.city.em import recovery_study
    from gnnrisk.data.city.hawkes import MOHLER_2011

    start = time.perf_counter()
    res = recovery_study(MOHLER_2011, horizon, range(replicates), max_lag=100.0, max_distance=1.0)
    seconds = time.perf_counter() - start
    print(f"EM recovery, Mohler 2011 settings, horizon {horizon:g} days, {res['replicates']} replicates "
          f"(seeds 0..{replicates - 1}), max_lag 100 days, max_distance 1.0, 95% Wald intervals (log scale)")
    print(f"mean events {res['events']:.0f}; median EM iterations {res['iterations']:.0f}; {seconds:.1f} s in all")
    print("| parameter | truth | mean estimate | sd of estimates | mean se | coverage | sd of z |")
    print("|---|---|---|---|---|---|---|")
    for k, row in res["parameters"].items():
        print(f"| {k} | {row['truth']:g} | {row['mean']:.4g} | {row['sd']:.3g} | {row['mean_se']:.3g} | "
              f"{row['coverage']:.3f} | {row['z_sd']:.2f} |")
    print(f"triggered share: planted {res['triggered_true']:.4f}, EM posterior {res['triggered_est']:.4f}")
    print(f"parent recovery: argmax accuracy {res['parent_accuracy']:.4f}, "
          f"mean posterior mass on the planted parent {res['parent_posterior_mass']:.4f}")


def main() -> None:
    """Print the generation table (markdown), or the recovery table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--recovery", type=int, default=0, help="replicates of the EM recovery study")
    parser.add_argument("--horizon", type=float, default=1000.0, help="days per replicate (recovery)")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(generate(args.child, args.seed)))
        return
    if args.recovery:
        recovery(args.recovery, args.horizon)
        return
    print("| people | places | directed ties | frequents | incidents | recorded | seconds | peak RSS GB "
          "| baseline GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        r = in_subprocess(n, args.seed)
        print(f"| {r['people']:,} | {r['places']:,} | {r['ties']:,} | {r['frequents']:,} | {r['incidents']:,} | "
              f"{r['recorded']:,} | {r['seconds']:.2f} | {r['peak_gb']:.2f} | {r['baseline_gb']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
