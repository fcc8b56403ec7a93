"""Explainer, logger and audit plug-ins (gnnrisk.explainers, .loggers, .audits): run like built-ins, refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

import gnnrisk
from gnnrisk.errors import ConfigError
from gnnrisk.explain import validate as validate_explain
from gnnrisk.explain.algorithms import ALGORITHMS, EXPLAINERS
from gnnrisk.logger import BUILTIN_LOGGERS, LOGGERS, validate_logger
from gnnrisk.plugins import BUILTIN

MODULE = '''
import json

from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm import ExplainerAlgorithm

from gnnrisk.logger.base import Logger


class IntoTarget(ExplainerAlgorithm):
    """Every edge into the explained node scores `weight`, every other edge 0."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, model, x, edge_index, *, target, index, **kwargs):
        return Explanation(edge_mask=(edge_index[1] == index).float() * self.weight)

    def supports(self):
        return True


class NeedsSteps(ExplainerAlgorithm):
    def __init__(self, steps):
        super().__init__()

    def forward(self, model, x, edge_index, **kwargs):
        raise NotImplementedError

    def supports(self):
        return True


class JsonLines(Logger):
    """One line per tracked run: its name and final metrics."""

    name = "jsonl"

    def log(self, record, target):
        target.store.mkdir(parents=True, exist_ok=True)
        with open(target.store / "runs.jsonl", "a") as out:
            out.write(json.dumps({"run": target.run_name, "metrics": record.metrics}) + "\\n")


class NotALogger:
    pass
'''
AUDIT_MODULE = '''
from gnnrisk.errors import ConfigError


def validate(cfg, data):
    if cfg.get("split", "test") not in ("test", "all"):
        raise ConfigError("audit.split", cfg.split, "expected test or all")


def run(cfg, data, trained, run_dir, seed):
    """The share of predicted positives per protected group, and its gap."""
    pred = trained.predict_proba().argmax(1).cpu()
    mask = data.test_mask.cpu() if cfg.get("split", "test") == "test" else data.y.new_ones(data.num_nodes).bool().cpu()
    rates = [float(pred[mask & (data.group.cpu() == g)].float().mean()) for g in range(int(data.group.max()) + 1)]
    (run_dir / "positive_rates.txt").write_text(" ".join(map(str, rates)))
    return {"audit_positive_rate_gap": max(rates) - min(rates)}
'''
NO_RUN = "X = 1\n"
TINY = ["data.num_nodes=200", "train.epochs=20", "threads=1"]


@pytest.fixture
def plugins(installed):
    installed("fakeplug", {"gnnrisk.explainers": {"into_target": "fakeplug_x:IntoTarget",
                                                  "needs_steps": "fakeplug_x:NeedsSteps",
                                                  "not_an_algorithm": "fakeplug_x:JsonLines"},
                           "gnnrisk.loggers": {"jsonl": "fakeplug_x:JsonLines", "broken": "fakeplug_x:NotALogger"},
                           "gnnrisk.audits": {"positive_rates": "fakeplug_audit", "no_run": "fakeplug_norun"}},
              {"fakeplug_x.py": MODULE, "fakeplug_audit.py": AUDIT_MODULE, "fakeplug_norun.py": NO_RUN})


def test_builtins_are_registered_by_gnnrisk_itself():
    assert all(EXPLAINERS.source(name) == BUILTIN for name in ALGORITHMS)
    assert set(BUILTIN_LOGGERS) <= set(LOGGERS) and LOGGERS.source("mlflow") == BUILTIN


def test_plugin_explainer_explains_a_run(plugins, tmp_path):
    """`explain=saliency explain.name=into_target +explain.weight=2`: the plug-in's masks are what the run saved
    and scored."""
    result = gnnrisk.run(["explain=saliency", "explain.name=into_target", "+explain.weight=2.0",
                          "explain.num_nodes=4", "explain.split=all", "explain.classes=[0,1]", *TINY],
                         run_dir=tmp_path / "run")
    assert result.metrics["explain_algorithm"] == "into_target"
    saved = np.load(tmp_path / "run" / "explanations.npz")
    # a tie scores the mean of its two directions: 2 into the explained node, 0 out of it
    assert set(np.unique(saved["edge_mask"]).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("settings, field, match", [
    ({"name": "into_target", "wieght": 2.0}, "explain.wieght", "has no such argument; its arguments: weight"),
    ({"name": "needs_steps"}, "explain.steps", "is required by explain=needs_steps"),
    ({"name": "not_an_algorithm"}, "explain.name", "must be a torch_geometric.explain.algorithm.ExplainerAlgorithm"),
])
def test_explainer_contract_violations_are_one_line(plugins, settings, field, match):
    cfg = OmegaConf.create({"nodes": "sample", "num_nodes": 5, "top_k": 10, **settings})
    with pytest.raises(ConfigError, match=match) as err:
        validate_explain(cfg)
    assert err.value.field == field and "\n" not in str(err.value)


def test_plugin_logger_tracks_a_run(plugins, tmp_path):
    """`logger=csv logger.name=jsonl`: the plug-in logger receives the finished run's record."""
    store = tmp_path / "store"
    result = gnnrisk.run(["logger=csv", "logger.name=jsonl", f"logger.dir={store}", *TINY], run_dir=tmp_path / "run")
    [line] = (store / "runs.jsonl").read_text().splitlines()
    assert json.loads(line)["metrics"]["test_acc"] == pytest.approx(result.metrics["test_acc"])


def test_plugin_that_is_not_a_logger_is_refused_before_training(plugins):
    with pytest.raises(ConfigError, match="must be a gnnrisk.logger.base.Logger subclass") as err:
        validate_logger(OmegaConf.create({"name": "broken", "dir": None}))
    assert err.value.field == "logger.name"


def test_plugin_audit_runs_after_training(plugins, tmp_path):
    """`audit=fairness audit.name=positive_rates`: the plug-in's metrics join metrics.json, its file the run folder."""
    result = gnnrisk.run(["audit=fairness", "audit.name=positive_rates", *TINY], run_dir=tmp_path / "run")
    rates = [float(r) for r in (tmp_path / "run" / "positive_rates.txt").read_text().split()]
    assert result.metrics["audit_positive_rate_gap"] == pytest.approx(max(rates) - min(rates))


def test_bad_audit_plugins_are_refused_before_training(plugins, tmp_path):
    """The plug-in's own validation, and a module without run(): one line each, before any training."""
    with pytest.raises(ConfigError, match="audit.split='val' is not allowed: expected test or all"):
        gnnrisk.run(["audit=fairness", "audit.name=positive_rates", "audit.split=val", *TINY], run_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="has no run\\(stage_cfg, data, trained, run_dir, seed\\) function"):
        gnnrisk.run(["audit=fairness", "audit.name=no_run", *TINY], run_dir=tmp_path / "b")
    assert not (tmp_path / "a" / "metrics.json").exists() and not (tmp_path / "b" / "metrics.json").exists()
