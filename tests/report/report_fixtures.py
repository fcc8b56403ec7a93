"""Fake sweep folders with known metrics, written the way the app writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def write_run(sweep: Path, name: str, config: dict[str, Any], metrics: dict[str, Any] | None = None,
              error: str | None = None) -> Path:
    """One run folder: config.yaml always, then metrics.json (finished) or error.json (failed), or neither."""
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))  # Hydra's copy: must be ignored
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (run / "error.json").write_text(json.dumps({"error": error, "type": "ConfigError", "details": None}))
    return run


def config(mechanism: str, epsilon: float | None, seed: int, model: str = "gcn") -> dict[str, Any]:
    """A config shaped like gnnrisk's: nested groups, a list value, mechanism-specific fields."""
    privacy: dict[str, Any] = {"name": mechanism, "epsilon": epsilon, "delta": None}
    if mechanism == "dpsgd_node":
        privacy.update(max_degree=5, max_grad_norm=1.0)
    return {"data": {"name": "synthetic", "num_nodes": 300}, "model": {"name": model, "hidden_channels": 16},
            "train": {"epochs": 5, "num_neighbors": [10, 10]}, "privacy": privacy, "seed": seed,
            "device": "auto", "skip_finished": True}


def fake_sweep(sweep: Path, rng: np.random.Generator) -> dict[tuple[str, float | None], list[dict[str, float]]]:
    """A sweep of none (crossed with the epsilon axis, as Hydra's basic sweeper does), edgerand and dpsgd_node
    x epsilon {1, 4} x seeds {0, 1, 2}, one failed and one unfinished run. Returns the metrics by group."""
    truth: dict[tuple[str, float | None], list[dict[str, float]]] = {}
    for mech in ("none", "edgerand", "dpsgd_node"):
        for eps in (1.0, 4.0):
            for seed in (0, 1, 2):
                m = {"test_acc": float(rng.uniform(0.5, 0.9)), "test_auroc": float(rng.uniform(0.5, 0.9)),
                     "seed": seed, "mechanism": mech, "model": "gcn", "train_seconds": float(rng.uniform(1, 2)),
                     "epsilon": None if mech == "none" else eps * 0.999,
                     "privacy_unit": None if mech == "none" else ("edge" if mech == "edgerand" else "node")}
                if mech == "none" and eps == 4.0:
                    m = dict(truth[("none", None)][seed])  # the same run again: none ignores epsilon
                name = f"privacy={mech},privacy.epsilon={eps:g},seed={seed}"
                write_run(sweep, name, config(mech, eps, seed), m)
                if mech != "none" or eps == 1.0:
                    truth.setdefault((mech, None if mech == "none" else eps), []).append(m)
    write_run(sweep, "privacy=edgerand,privacy.epsilon=-1,seed=0", config("edgerand", -1.0, 0),
              error="privacy.epsilon=-1.0 is not allowed: expected a finite number > 0")
    write_run(sweep, "privacy=edgerand,privacy.epsilon=16,seed=0", config("edgerand", 16.0, 0))  # killed
    return truth


JITTER = (0.004, -0.003, 0.001, -0.002, 0.0)   # small per-seed noise around a fixed private offset


def paired_sweep(sweep: Path, offsets: dict[str, float], n_seeds: int = 5) -> dict[tuple[str, int], float]:
    """Per model in `offsets`: `none` (crossed with epsilon {1, 4}: repeats) and `edgerand` at epsilon 1 over seeds.

    none's test_auroc varies a lot between seeds (0.55 + 0.08 * seed); edgerand's is none's of the same model
    and seed + the model's offset + JITTER[seed]. Returns none's test_auroc by (model, seed).
    """
    reference: dict[tuple[str, int], float] = {}
    for model, offset in offsets.items():
        for seed in range(n_seeds):
            ref = reference[(model, seed)] = 0.55 + 0.08 * seed + (0.01 if model == "sage" else 0.0)
            for eps in (1.0, 4.0):
                write_run(sweep, f"model={model},privacy=none,privacy.epsilon={eps:g},seed={seed}",
                          config("none", eps, seed, model),
                          {"test_auroc": ref, "epsilon": None, "privacy_unit": None, "seed": seed})
            write_run(sweep, f"model={model},privacy=edgerand,privacy.epsilon=1,seed={seed}",
                      config("edgerand", 1.0, seed, model),
                      {"test_auroc": ref + offset + JITTER[seed % len(JITTER)], "epsilon": 0.999,
                       "privacy_unit": "edge", "seed": seed})
    return reference


MODEL_METRICS = ("test_acc", "test_acc_true", "test_auroc", "test_auroc_true", "attack_linkteller_auroc")


def model_sweep(sweep: Path, models: tuple[str, ...] = ("gcn", "mlp"), topologies: tuple[str, ...] = ("dcsbm",),
                n_seeds: int = 3, rng: np.random.Generator | None = None) -> None:
    """Non-private runs only (no epsilon anywhere) over models x topologies x seeds, as
    `gnnrisk-run -m model=gcn,mlp data.topology=... seed=...` writes them; random MODEL_METRICS."""
    rng = rng if rng is not None else np.random.default_rng(0)
    for model in models:
        for topology in topologies:
            for seed in range(n_seeds):
                cfg = config("none", None, seed, model)
                cfg["data"]["topology"] = topology
                metrics: dict[str, Any] = {m: float(rng.uniform(0.45, 0.9)) for m in MODEL_METRICS}
                metrics.update(epsilon=None, privacy_unit=None, seed=seed, model=model)
                name = f"model={model},seed={seed}" + (f",data.topology={topology}" if len(topologies) > 1 else "")
                write_run(sweep, name, cfg, metrics)
