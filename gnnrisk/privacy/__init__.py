"""Privacy mechanisms: each one trains a model on a dataset and reports what it spent.

A mechanism is looked up by `privacy.name` in `MECHANISMS` ("module:Class"); its class is built
from the `privacy` config group and exposes `train(data, model_cfg, train_cfg, seed) -> TrainedModel`.
"""

from __future__ import annotations

import importlib

from omegaconf import DictConfig

from gnnrisk.errors import check_choice
from gnnrisk.privacy.base import Mechanism, TrainedModel

MECHANISMS: dict[str, str] = {
    "none": "gnnrisk.privacy.base:NonPrivate",
    "edgerand": "gnnrisk.privacy.graph_perturbation:EdgeRand",
    "lapgraph": "gnnrisk.privacy.graph_perturbation:LapGraph",
    "gap_edp": "gnnrisk.privacy.gap:GapEdp",
    "gap_ndp": "gnnrisk.privacy.gap:GapNdp",
    "progap_edp": "gnnrisk.privacy.progap:ProgapEdp",
    "progap_ndp": "gnnrisk.privacy.progap:ProgapNdp",
    "dpdgc_edp": "gnnrisk.privacy.dpdgc:DpdgcEdp",
    "dpdgc_ndp": "gnnrisk.privacy.dpdgc:DpdgcNdp",
    "dpsgd_node": "gnnrisk.privacy.dpsgd_node:DpsgdNode",
    "dp_mlp": "gnnrisk.privacy.dp_mlp:DpMlp",
}


def build_mechanism(cfg: DictConfig) -> Mechanism:
    """Instantiate the mechanism that `cfg.name` names, validating its config."""
    name = check_choice("privacy.name", cfg.name, MECHANISMS)
    module, cls = MECHANISMS[name].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)


__all__ = ["MECHANISMS", "Mechanism", "TrainedModel", "build_mechanism"]
