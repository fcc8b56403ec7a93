"""Deliberately broken mechanisms that the conformance check must fail."""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrisk.privacy.base import Mechanism, NonPrivate
from gnnrisk.privacy.gap import GapEdp
from gnnrisk.privacy.graph_perturbation import EdgeRand, flip_probability


class NoiselessEdgeRand(EdgeRand):
    """EdgeRand with its noise switched off: the true graph is released, epsilon and flip_prob still reported."""

    name = "noiseless_edgerand"

    def perturb_cells(self, cells: np.ndarray, num_nodes: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """No cell flips; the noise parameter claimed is the honest one."""
        return cells, {"flip_prob": flip_probability(self.epsilon)}


class UnderReportingGapEdp(GapEdp):
    """GAP-EDP whose noise is honest but whose reported epsilon is half of what its DpEvent spends."""

    name = "underreporting_gap_edp"

    def train(self, *args: Any, **kwargs: Any):
        """GAP-EDP's training, then epsilon halved in the report."""
        trained = super().train(*args, **kwargs)
        trained.privacy = {**trained.privacy, "mechanism": self.name, "epsilon": trained.privacy["epsilon"] / 2}
        return trained


class NotAMechanism:
    """A class that does not derive from Mechanism."""

    def train(self, *args: Any) -> None:
        """Never called."""


class NoTrain(Mechanism):
    """A Mechanism subclass that does not implement train()."""

    name = "no_train"
    privacy_unit = "edge"


class ClaimingNodeDp(NonPrivate):
    """Ordinary training that claims node-level (1, 1e-5)-DP."""

    name = "claiming_node_dp"
    privacy_unit = "node"
    releases = "model"

    def train(self, *args: Any, **kwargs: Any):
        """Non-private training, reported as node-level DP at epsilon 1."""
        trained = super().train(*args, **kwargs)
        trained.privacy = {"mechanism": self.name, "privacy_unit": "node", "epsilon": 1.0, "delta": 1e-5}
        return trained
