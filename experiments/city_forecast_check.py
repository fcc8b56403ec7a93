"""Check the city's place forecasters side by side: hit rate and PAI at 5%, AUROC, against truth and record.

    .venv/bin/python experiments/city_forecast_check.py [--seeds 0 1 2] [--origins 8 9 10] [--refit once]

One default city per seed (`gnnrisk.data.city.DEFAULTS`); every baseline and GNN of
`gnnrisk.train.city_forecast` at the given origins, each model's settings at their defaults. Two
reference rows: `random` (uniform scores) and `oracle` (the true rate `place.rate[:, t + 1]`, which no
forecaster can read). Prints one markdown table: means over seeds (sd in brackets) and the mean wall
time per model and city.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from gnnrisk.data.city import generate_city
from gnnrisk.train.city_forecast import MODEL_NAMES, CityForecast, forecast_city
from gnnrisk.train.hotspot_metrics import score_forecast

COLUMNS = [("hit_rate_true_at_5", "hit@5 true"), ("pai_true_at_5", "PAI@5 true"),
           ("hit_rate_recorded_at_5", "hit@5 rec"), ("pai_recorded_at_5", "PAI@5 rec"),
           ("auroc_true", "AUROC true"), ("auroc_recorded", "AUROC rec"), ("spearman_true_rate", "Spearman rate")]


def main() -> None:
    """Run every model on every seed's city and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--origins", type=int, nargs="+", default=[8, 9, 10])
    parser.add_argument("--refit", choices=["origin", "once"], default="once")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES))
    args = parser.parse_args()
    train_cfg = {"epochs": args.epochs, "refit": args.refit}
    rows: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:  # cities
        data = generate_city({}, seed=seed)
        p = data["place"].num_nodes
        inc = data["incident"]
        print(f"seed {seed}: {p} places, {inc.num_nodes} incidents, {int(inc.recorded.sum())} recorded", flush=True)
        nxt = torch.tensor(args.origins) + 1
        noise = torch.rand(len(args.origins), p, generator=torch.Generator().manual_seed(seed))
        references = {"random": noise, "oracle": data["place"].rate[:, nxt].T}
        for name, scores in references.items():
            rows.setdefault(name, []).append({**score_forecast(CityForecast(scores, args.origins, name), data),
                                              "seconds": float("nan")})
        for name in args.models:  # models
            start = time.perf_counter()
            forecast = forecast_city(data, name, {}, train_cfg, args.origins, seed)
            seconds = time.perf_counter() - start
            rows.setdefault(name, []).append({**score_forecast(forecast, data), "seconds": seconds})
            print(f"  {name}: {seconds:.1f} s", flush=True)
    print(f"\n{platform.node()}, torch {torch.__version__}, {torch.get_num_threads()} threads; origins {args.origins}, "
          f"GNN train {train_cfg}, seeds {args.seeds}\n")
    print("| model | " + " | ".join(label for _, label in COLUMNS) + " | seconds |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for name, results in rows.items():
        cells = []
        for key, _ in COLUMNS:
            values = np.array([r[key] for r in results])
            cells.append(f"{np.nanmean(values):.3f} ({np.nanstd(values):.3f})")
        secs = np.array([r["seconds"] for r in results])
        cells.append("-" if np.isnan(secs).all() else f"{np.mean(secs):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
