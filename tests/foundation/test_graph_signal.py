"""The synthetic world's claims, on the default graph: ties carry signal, observation bias shows up.

Seeds are fixed, so on CPU these tests are deterministic; they are slow (full default runs).
"""

from __future__ import annotations

import numpy as np
import pytest

from foundation_helpers import compose_cfg
from gnnrisk.pipeline import run_experiment

pytestmark = pytest.mark.slow


def mean_metric(tmp_path, key: str, *overrides: str, seeds=(0, 1)) -> float:
    """Mean of a metric over seeds for one configuration."""
    values = [run_experiment(compose_cfg(*overrides, f"seed={s}"), tmp_path / f"{'-'.join(overrides)}-{s}")[key]
              for s in seeds]
    return float(np.mean(values))


def test_graph_models_beat_the_mlp_on_the_truth(tmp_path):
    mlp = mean_metric(tmp_path, "test_auroc_true", "model=mlp")
    gcn = mean_metric(tmp_path, "test_auroc_true", "model=gcn")
    sage = mean_metric(tmp_path, "test_auroc_true", "model=sage")
    assert gcn > mlp + 0.05 and sage > mlp + 0.05, (gcn, sage, mlp)


def test_observation_bias_shows_in_equal_opportunity_gap(tmp_path):
    # at a fixed flagging budget (top 25% of test nodes), so that both records are judged alike
    seeds = (0, 1, 2)
    budget = "eval.selection_rate=0.25"
    biased = mean_metric(tmp_path, "delta_eo_true", "model=gcn", budget, seeds=seeds)
    equal = mean_metric(tmp_path, "delta_eo_true", "model=gcn", budget, "data.observation.detection_rate.majority=0.9",
                        seeds=seeds)
    assert biased > equal + 0.05, (biased, equal)
