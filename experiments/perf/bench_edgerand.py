"""Benchmark: EdgeRand (and LapGraph) on a 1M-node graph with 10M undirected edges.

Target (issue 3): EdgeRand at most 10 s and 4 GB on 2 cores. Each (mechanism, epsilon) runs in
a fresh process that loads the cached graph, so its peak resident memory (ru_maxrss) is the
memory of releasing the perturbed graph from that input, not of generating the input.

    OMP_NUM_THREADS=2 python experiments/perf/bench_edgerand.py            # 1M nodes, 10M edges
    python experiments/perf/bench_edgerand.py --nodes 100000 --edges 1000000 --eps 8 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

TARGET_SECONDS = 10.0
TARGET_GIB = 4.0


def make_graph(num_nodes: int, num_edges: int, path: Path, seed: int = 0) -> None:
    """Heavy-tailed DC-SBM graph from gnnrisk.data.topology, saved as an undirected edge_index."""
    from gnnrisk.data import topology as topo
    from torch_geometric.utils import to_undirected

    rng = np.random.default_rng(seed)
    community = rng.integers(0, 1000, num_nodes)
    theta = topo.heavy_tailed_weights(num_nodes, 2.5, 2.0 * num_edges / num_nodes, rng)
    edges = topo.dcsbm_edges(community, num_edges, theta, 0.2, rng)
    edge_index = to_undirected(torch.from_numpy(edges), num_nodes=num_nodes)
    torch.save(edge_index, path)


def cache_dir() -> Path:
    """A per-user folder (mode 0700) for the generated graph, so no other user can plant one."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gnnrisk"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o700)
    return base


def worker(path: Path, num_nodes: int, mechanism: str, epsilon: float) -> dict:
    """Release the perturbed graph once and report wall time, output size and peak memory."""
    from omegaconf import OmegaConf
    from torch_geometric.data import Data

    from gnnrisk.errors import ConfigError
    from gnnrisk.privacy import build_mechanism

    edge_index = torch.load(path, weights_only=True)
    if not isinstance(edge_index, torch.Tensor):
        raise SystemExit(f"{path}: expected a saved edge_index tensor; delete it to regenerate")
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    cfg = OmegaConf.create({"name": mechanism, "epsilon": epsilon, "delta": 0.0, "max_edges": 50_000_000})
    mech = build_mechanism(cfg)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        released, privacy = mech.perturb(data, seed=0)
        edges, note = privacy["perturbed_num_edges"], ""
    except ConfigError as err:  # EdgeRand's output would exceed max_edges: report the guard
        edges, note = None, str(err)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux
    return {"mechanism": mechanism, "epsilon": epsilon, "input_edges": int(edge_index.size(1)) // 2,
            "output_edges": edges, "seconds": seconds, "cpu_seconds": cpu, "peak_gib": peak_gib, "note": note}


def main() -> None:
    """Generate (or reuse) the graph, run each configuration in its own process, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--eps", type=float, nargs="+", default=[8.0, 10.0, 12.0])
    parser.add_argument("--mechanisms", nargs="+", default=["edgerand", "lapgraph"])
    parser.add_argument("--worker", nargs=3, metavar=("PATH", "MECHANISM", "EPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        path, mechanism, eps = args.worker
        print(json.dumps(worker(Path(path), args.nodes, mechanism, float(eps))))
        return
    path = cache_dir() / f"bench_graph_{args.nodes}_{args.edges}.pt"
    if not path.exists():
        start = time.perf_counter()
        make_graph(args.nodes, args.edges, path)
        print(f"generated {path} in {time.perf_counter() - start:.1f} s")
    print(f"torch threads: {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(wall seconds count waiting for a core; cpu s is this process's own CPU time)")
    header = f"{'mechanism':<9} {'eps':>5} {'in edges':>10} {'out edges':>11} {'seconds':>8} {'s/target':>8} " \
             f"{'cpu s':>6} {'peak GiB':>8} {'GiB/target':>10}"
    print(header)
    print("-" * len(header))
    for mechanism in args.mechanisms:
        for eps in args.eps:
            cmd = [sys.executable, __file__, "--nodes", str(args.nodes), "--worker", str(path), mechanism, str(eps)]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            out = "guard" if r["output_edges"] is None else f"{r['output_edges']:,}"
            print(f"{mechanism:<9} {eps:>5g} {r['input_edges']:>10,} {out:>11} {r['seconds']:>8.2f} "
                  f"{r['seconds'] / TARGET_SECONDS:>8.2f} {r['cpu_seconds']:>6.2f} {r['peak_gib']:>8.2f} "
                  f"{r['peak_gib'] / TARGET_GIB:>10.2f}")
            if r["note"]:
                print(f"  {r['note']}")


if __name__ == "__main__":
    main()
