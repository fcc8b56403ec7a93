"""Benchmark: one DP-SGD step of the node-level mechanisms' MLPs, ghost clipping vs per-sample clipping.

The shared DP-SGD loop (`gnnrisk.privacy.gap_dpsgd.dpsgd_fit`) clips with Opacus's ghost clipping: each
example's gradient norm from its activations and backprops, then a second backward on the reweighted loss.
The reference is what the loop did before (until 0.2.0): Opacus's `GradSampleModule` materialising every
per-example gradient ([B, out, in] per linear layer) and `DPOptimizer` clipping them. Both train the same
MLP (DPDGC's DP-MLP on CiteSeer: 3,703 binary features, hidden 64, 3 layers, SELU, 6 classes) on the same
Poisson batches (expected size 64) with the same noise; timings alternate and report the median step over
--repeats blocks of --steps steps, after a warm-up block.

    OMP_NUM_THREADS=1 nice python experiments/perf/bench_dpsgd_clipping.py [--model torch|pyg --repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn
from torch_geometric.nn import MLP

from gnnrisk.privacy.gap_dpsgd import dpsgd_fit


def make_mlp(features: int, hidden: int, classes: int, kind: str = "torch") -> nn.Module:
    """DPDGC's DP-MLP shape: three linear layers with SELU, as torch.nn.Linear (GAP's parts) or PyG's MLP (dp_mlp)."""
    torch.manual_seed(0)
    if kind == "pyg":
        return MLP([features, hidden, hidden, classes], act="selu", norm=None, dropout=0.0)
    return nn.Sequential(nn.Linear(features, hidden), nn.SELU(), nn.Linear(hidden, hidden), nn.SELU(),
                         nn.Linear(hidden, classes))


def per_sample_steps(module: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    """Seconds per step of the per-sample-clipping loop (GradSampleModule + DPOptimizer)."""
    n = x.size(0)
    gsm = GradSampleModule(module, loss_reduction="sum")
    optimizer = DPOptimizer(torch.optim.Adam(gsm.parameters(), lr=1e-3), noise_multiplier=1.0, max_grad_norm=1.0,
                            expected_batch_size=batch, loss_reduction="mean")
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        chosen = (torch.rand(n, generator=generator) < batch / n).nonzero().flatten()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(gsm(x[chosen]), y[chosen], reduction="sum").backward()
        optimizer.step()
    seconds = (time.perf_counter() - start) / steps
    gsm._close()
    return seconds


def ghost_steps(module: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    """Seconds per step of `dpsgd_fit` (ghost clipping): one epoch of `steps` Poisson steps."""
    start = time.perf_counter()
    done, _ = dpsgd_fit(module, x[: steps * batch], y[: steps * batch], epochs=1, batch_size=batch, lr=1e-3,
                        weight_decay=0.0, noise_multiplier=1.0, max_grad_norm=1.0, seed=0)
    return (time.perf_counter() - start) / done


def main() -> None:
    """Print the median step time of each clipping method and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=3703)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", choices=["torch", "pyg"], default="torch",
                        help="torch.nn.Linear stack (GAP's encoder and classifier) or PyG's MLP (dp_mlp)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    g = torch.Generator().manual_seed(0)
    n = args.steps * args.batch
    x = (torch.rand(n, args.features, generator=g) < 0.0086).float()  # CiteSeer's ~32 words of 3,703
    y = torch.randint(0, 6, (n,), generator=g)
    ghost, per_sample = [], []
    for repeat in range(args.repeats + 1):  # block 0 warms up
        g_s = ghost_steps(make_mlp(args.features, args.hidden, 6, args.model), x, y, args.steps, args.batch)
        p_s = per_sample_steps(make_mlp(args.features, args.hidden, 6, args.model), x, y, args.steps, args.batch)
        if repeat:
            ghost.append(g_s)
            per_sample.append(p_s)
    g_med, p_med = statistics.median(ghost), statistics.median(per_sample)
    print(f"model={args.model} threads={torch.get_num_threads()} features={args.features} hidden={args.hidden} batch={args.batch} "
          f"steps={args.steps} repeats={args.repeats}")
    print(f"per-sample clipping (GradSampleModule): {p_med * 1e3:7.2f} ms/step")
    print(f"ghost clipping (dpsgd_fit):             {g_med * 1e3:7.2f} ms/step")
    print(f"speed-up: {p_med / g_med:.1f}x")


if __name__ == "__main__":
    main()
