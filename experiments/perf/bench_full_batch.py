"""Benchmark: full-batch training through the cached sparse operator vs plain PyG message passing.

Both paths train the same model from the same initialisation with the same seed (gnnrisk's
`fit`, validation every epoch, no early stop); "plain" routes every forward through the PyG
model's `forward(x, edge_index)`. Runs alternate (plain, cached, plain, ...) so that load
changes hit both; the ratio is the median over repeats. Also prints the largest difference of
the predicted probabilities (target: below 1e-4): of one set of weights through both paths, and
of the two models trained from the same seed (float32 sums in another order drift apart over
the epochs, most with sum aggregation over hubs).

    python experiments/perf/bench_full_batch.py --case scale      # 100k nodes, ~2M directed edges, GCN and SAGE
    python experiments/perf/bench_full_batch.py --case edgerand   # EdgeRand's released graph, 5000 nodes, eps 1
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import torch
from hydra import compose, initialize_config_dir

from gnnrisk.data import build_dataset
from gnnrisk.models import build_model
from gnnrisk.models.full_batch import OPERATORS
from gnnrisk.privacy import build_mechanism
from gnnrisk.train import loop

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def plain_forward(model, x, edge_index):
    """PyG's own message passing on every call: the baseline."""
    return lambda: model(x, edge_index)


def train_once(cfg, data, plain: bool) -> tuple[float, torch.Tensor, torch.nn.Module]:
    """Seconds of `fit`, the predicted probabilities and the model, through the plain or the cached path."""
    torch.manual_seed(0)
    model = build_model(cfg.model, data.num_features, int(data.y.max()) + 1)
    OPERATORS.entries.clear()  # a run builds its operator once: time that too
    patch = mock.patch.object(loop, "full_graph_forward", plain_forward) if plain else nullcontext()
    with patch:
        start = time.perf_counter()
        loop.fit(model, data, cfg.train, seed=0)
        seconds = time.perf_counter() - start
        prob = loop.predict_proba(model, data)
    return seconds, prob, model


@torch.no_grad()
def same_weights_errors(model, data) -> tuple[float, float, float]:
    """For one set of trained weights: max |prob difference| between the paths, and each path's against float64."""
    model.eval()
    plain = model(data.x, data.edge_index).softmax(-1).double()
    cached = loop.full_graph_forward(model, data.x, data.edge_index)().softmax(-1).double()
    exact = copy.deepcopy(model).double()(data.x.double(), data.edge_index).softmax(-1)
    return tuple(float(d.abs().max()) for d in (plain - cached, plain - exact, cached - exact))


def main() -> None:
    """Time both paths per model and print seconds, the median ratio and the prediction difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("scale", "edgerand"), default="scale")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 50 scale, 200 edgerand)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=None, help="models to time (default: gcn sage / gcn)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case == "scale":
        overrides = ["data.num_nodes=100000", "data.mean_degree=20"]
        models, epochs = ("gcn", "sage"), args.epochs or 50
    else:
        overrides = ["privacy=edgerand", "privacy.epsilon=1"]
        models, epochs = ("gcn",), args.epochs or 200
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=overrides + [f"train.epochs={epochs}", f"train.patience={epochs}"])
    data = build_dataset(cfg.data, 0)
    if args.case == "edgerand":
        data, _ = build_mechanism(cfg.privacy).perturb(data, 0)  # the released graph EdgeRand's model trains on
    models = args.models or models
    print(f"graph: {data.num_nodes} nodes, {data.num_edges} directed edges; {epochs} epochs; "
          f"{args.threads} thread(s); load average {os.getloadavg()[0]:.2f}")
    for name in models:
        cfg.model = compose_model(name)
        times = {True: [], False: []}
        diff, same = 0.0, (0.0, 0.0, 0.0)
        for _ in range(args.repeats):
            plain_s, plain_p, plain_model = train_once(cfg, data, plain=True)
            fast_s, fast_p, _ = train_once(cfg, data, plain=False)
            times[True].append(plain_s)
            times[False].append(fast_s)
            diff = max(diff, float((plain_p - fast_p).abs().max()))
            same = tuple(map(max, same, same_weights_errors(plain_model, data)))
        ratios = [p / f for p, f in zip(times[True], times[False])]
        print(f"{name}: plain PyG {statistics.median(times[True]):.2f} s, cached operator "
              f"{statistics.median(times[False]):.2f} s, median ratio {statistics.median(ratios):.1f}x "
              f"(ratios {', '.join(f'{r:.1f}' for r in ratios)}); max |prob difference|: same weights {same[0]:.1e} "
              f"(against float64: PyG {same[1]:.1e}, cached {same[2]:.1e}), after training from the same seed "
              f"{diff:.1e}")


def compose_model(name: str):
    """The `model` group config of this name."""
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("config", overrides=[f"model={name}"]).model


if __name__ == "__main__":
    main()
