"""Which trials a private selection covers: each mechanism's RDP curve rebuilt from a run's metrics.json,
and, at node level, the sensitivity of the validation count that the sweeper adds noise to.

Theorem 2 needs the whole RDP curve of a trial, and a run reports only (epsilon, delta): the curve is rebuilt
from the parameters the run recorded and must give back the epsilon the run reported (else no bound).
Where a mechanism's module has its own epsilon function of those parameters (gap.ndp_epsilon,
progap.ndp_epsilon) the rebuilt curve must also agree with it, so that a change of the mechanism's
accounting that this table does not follow gives no bound rather than a wrong one; dpsgd_node's and
dpdgc_ndp's curves are built by the functions their modules use (accounting.rdp_node_dpsgd, dpdgc.ndp_curve).

The score at node level (docs/tuning.md#node-level-a-noisy-validation-score). A trial releases its model M
(covered by its epsilon) and the count S = #{validation nodes v : M predicts y_v}, plus N(0, s^2). By adaptive
composition the score costs its own RDP, a (Delta^2 / (2 s^2)) at order a, where Delta bounds how much S can
move between neighbouring graphs (one node added or removed, with its features, label and edges) with M held
fixed (the model's own change is what the mechanism's epsilon covers):

- dp_mlp: a prediction reads the node's own features only; removing node u removes u's term: Delta = 1.
- gap_ndp, progap_ndp, dpdgc_ndp: a prediction reads the node's own features and the node's rows of the
  released noisy aggregations (GAP's hops, ProGAP's cached NAP rows, DPDGC's released xA); those rows are part
  of the mechanism's release, and a node's own row is read only by its own prediction, as the mechanisms'
  own analyses treat it. With the release held fixed, removing u changes u's term only: Delta = 1.
- dpsgd_node: the model is queried on the degree-bounded graph (every in- and out-degree <= D), and a
  K-layer GraphSAGE's prediction at v reads v's K-hop in-neighbourhood. Removing u changes the predictions of
  u and of the nodes u reaches in at most K hops: at most N_K = sum_{k<=K} D^k terms (u's own included), so
  Delta = N_K, with respect to the degree-bounded graph, the relation its accountant already assumes
  (accounting.occurrences_bound; metrics.json's max_occurrences).

Refused: the edge-level mechanisms with a score noise (their score is post-processing of the release and
needs none); any mechanism not in `ACCOUNTING` (non-private runs, dpdgc_edp, whose curve gnnrisk does not
rebuild yet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class Accounting:
    """How one mechanism's trials are covered."""

    unit: str                                     # "edge" or "node" (the mechanism class's privacy_unit)
    curve: Callable[[Mapping[str, Any]], np.ndarray]   # its RDP curve on `orders`, from metrics.json
    fixed: tuple[str, ...]                        # config keys its accounting reads: never searched
    fields: tuple[str, ...]                       # metrics.json keys `curve` reads (besides epsilon, delta)
    own_epsilon: Callable[[Mapping[str, Any]], float] | None = None   # the module's epsilon function
    sensitivity: Callable[[Mapping[str, Any]], float] | None = None  # node level: Delta of the validation count
    orders: str = "ORDERS"                        # the accountant's grid in gnnrisk.privacy.accounting
    pure: bool = False                            # a pure epsilon-DP release (delta 0)


def _accounting():
    from gnnrisk.privacy import accounting

    return accounting


def _gaussian_hops(m: Mapping[str, Any]) -> np.ndarray:
    """GAP/ProGAP edge level: `hops` Gaussian aggregations with std = noise_multiplier * sensitivity."""
    return _accounting().rdp_gaussian(float(m["noise_multiplier"]), 1.0, steps=int(m["hops"]))


def _pure(m: Mapping[str, Any]) -> np.ndarray:
    """A pure epsilon-DP release: EdgeRand, LapGraph (all periods composed into `epsilon`)."""
    from gnnrisk.private_selection.bound import pure_dp_rdp

    return pure_dp_rdp(float(m["epsilon"]))


def _dp_mlp(m: Mapping[str, Any]) -> np.ndarray:
    """DP-MLP: `steps` Poisson-subsampled Gaussian steps (dp_mlp.DpMlp.train, read over accounting.ORDERS)."""
    return _accounting().rdp_subsampled_gaussian(float(m["noise_multiplier"]), float(m["sample_rate"]),
                                                 int(m["steps"]))


def _gap_ndp(m: Mapping[str, Any]) -> np.ndarray:
    """GAP-NDP: DP-SGD encoder + `hops` Gaussian hops (std z sqrt(D), sensitivity sqrt(D)) + DP-SGD classifier,
    all with noise multiplier z and rate q (the composition of gap.ndp_epsilon)."""
    acc = _accounting()
    z = float(m["noise_multiplier"])
    step = acc.rdp_subsampled_gaussian(z, float(m["sample_rate"]), 1)
    return acc.compose(int(m["encoder_steps"]) * step, acc.rdp_gaussian(z, 1.0, steps=int(m["hops"])),
                       int(m["classifier_steps"]) * step)


def _gap_ndp_epsilon(m: Mapping[str, Any]) -> float:
    from gnnrisk.privacy.gap import ndp_epsilon

    return ndp_epsilon(float(m["noise_multiplier"]), int(m["hops"]), float(m["sample_rate"]), int(m["encoder_steps"]),
                       int(m["classifier_steps"]), float(m["delta"]))


def _progap_ndp(m: Mapping[str, Any]) -> np.ndarray:
    """ProGAP-NDP: `hops` Gaussian aggregations + (hops + 1) DP-SGD stages of `stage_steps` steps (the
    composition of progap.ndp_epsilon)."""
    acc = _accounting()
    z, hops = float(m["noise_multiplier"]), int(m["hops"])
    return acc.compose(acc.rdp_gaussian(z, 1.0, steps=hops),
                       (hops + 1) * int(m["stage_steps"]) * acc.rdp_subsampled_gaussian(z, float(m["sample_rate"]), 1))


def _progap_ndp_epsilon(m: Mapping[str, Any]) -> float:
    from gnnrisk.privacy.progap import ndp_epsilon

    return ndp_epsilon(float(m["noise_multiplier"]), int(m["hops"]), float(m["sample_rate"]), int(m["stage_steps"]),
                       float(m["delta"]))


def _dpsgd_node(m: Mapping[str, Any]) -> np.ndarray:
    """dpsgd_node: Daigavane et al.'s node-level DP-SGD bound over the `num_train` training examples, plus the
    Gaussian label histogram when class_balance is on (dpsgd_node.DpsgdNode.train)."""
    from gnnrisk.privacy.dpsgd_node import LABEL_COUNT_SENSITIVITY

    acc = _accounting()
    curve = acc.rdp_node_dpsgd(float(m["noise_multiplier"]), int(m["num_train"]), int(m["batch_size"]),
                               int(m["max_degree"]), int(m["num_hops"]), int(m["steps"]))
    if m["class_balance"]:
        curve = acc.compose(curve, acc.rdp_gaussian(float(m["class_count_noise"]), LABEL_COUNT_SENSITIVITY))
    return curve


def _dpsgd_node_sensitivity(m: Mapping[str, Any]) -> float:
    """N_K = sum_{k<=K} D^k validation predictions one node can reach on the degree-bounded graph."""
    n_k = _accounting().occurrences_bound(int(m["max_degree"]), int(m["num_hops"]))
    if m.get("max_occurrences") is not None and int(m["max_occurrences"]) != n_k:
        raise ValueError(f"max_occurrences {m['max_occurrences']} is not sum_k D^k = {n_k}")
    return float(n_k)


def _dpdgc_ndp(m: Mapping[str, Any]) -> np.ndarray:
    """dpdgc_ndp: its own curve function (encoder, release, classifier) on its own integer orders."""
    from gnnrisk.privacy.dpdgc import ndp_curve

    return ndp_curve(float(m["noise_multiplier"]), float(m["sample_rate"]), int(m["encoder_steps"]),
                     int(m["classifier_steps"]), int(m["max_degree"]))


def _one(m: Mapping[str, Any]) -> float:
    return 1.0


_EDGE = ("privacy.epsilon", "privacy.delta", "privacy.hops")
ACCOUNTING: dict[str, Accounting] = {
    "gap_edp": Accounting("edge", _gaussian_hops, _EDGE, ("noise_multiplier", "hops")),
    "progap_edp": Accounting("edge", _gaussian_hops, _EDGE, ("noise_multiplier", "hops")),
    "edgerand": Accounting("edge", _pure, ("privacy.epsilon", "privacy.delta"), (), pure=True),
    "lapgraph": Accounting("edge", _pure, ("privacy.epsilon", "privacy.delta"), (), pure=True),
    "dp_mlp": Accounting("node", _dp_mlp, ("privacy.epsilon", "privacy.delta", "privacy.batch_size", "privacy.epochs"),
                         ("noise_multiplier", "sample_rate", "steps"), sensitivity=_one),
    "gap_ndp": Accounting("node", _gap_ndp, ("privacy.epsilon", "privacy.delta", "privacy.hops", "privacy.batch_size",
                                             "privacy.encoder_epochs", "privacy.epochs"),
                          ("noise_multiplier", "sample_rate", "hops", "encoder_steps", "classifier_steps"),
                          own_epsilon=_gap_ndp_epsilon, sensitivity=_one),
    "progap_ndp": Accounting("node", _progap_ndp, ("privacy.epsilon", "privacy.delta", "privacy.hops",
                                                   "privacy.batch_size", "privacy.epochs"),
                             ("noise_multiplier", "sample_rate", "hops", "stage_steps"),
                             own_epsilon=_progap_ndp_epsilon, sensitivity=_one),
    "dpsgd_node": Accounting("node", _dpsgd_node, ("privacy.epsilon", "privacy.delta", "privacy.max_degree",
                                                   "privacy.batch_size", "privacy.epochs", "privacy.class_balance",
                                                   "privacy.class_count_noise", "model.num_layers"),
                             ("noise_multiplier", "num_train", "batch_size", "max_degree", "num_hops", "steps",
                              "class_balance", "class_count_noise", "max_occurrences"),
                             sensitivity=_dpsgd_node_sensitivity),
    "dpdgc_ndp": Accounting("node", _dpdgc_ndp, ("privacy.epsilon", "privacy.delta", "privacy.max_degree",
                                                 "privacy.batch_size", "privacy.encoder_epochs", "privacy.epochs"),
                            ("noise_multiplier", "sample_rate", "encoder_steps", "classifier_steps", "max_degree"),
                            sensitivity=_one, orders="INTEGER_ORDERS"),
}
# what the curves read from metrics.json besides mechanism, privacy_unit, epsilon, delta
CURVE_FIELDS = tuple(dict.fromkeys(f for a in ACCOUNTING.values() for f in a.fields))


@dataclass(frozen=True)
class TrialCurve:
    """A finished trial's RDP curve (its mechanism's, on `orders`) and, at node level, the score's Delta."""

    curve: np.ndarray
    orders: tuple[float, ...]
    sensitivity: float | None

    def same_as(self, other: "TrialCurve") -> bool:
        return (self.orders == other.orders and self.sensitivity == other.sensitivity
                and np.array_equal(self.curve, other.curve))

    def with_score(self, score_noise: float | None) -> np.ndarray:
        """The trial's RDP curve with its noisy validation count (std `score_noise`) composed in."""
        if self.sensitivity is None:
            return self.curve
        return self.curve + _accounting().rdp_gaussian(float(score_noise), self.sensitivity, orders=self.orders)


def trial_rdp_curve(metrics: Mapping[str, Any]) -> tuple[TrialCurve | None, str | None]:
    """(a finished private run's RDP curve rebuilt from its metrics.json, None) or (None, why not)."""
    acc = _accounting()
    name, eps, delta = metrics.get("mechanism"), metrics.get("epsilon"), metrics.get("delta")
    if eps is None:
        return None, f"a non-private trial ({name})"
    if name not in ACCOUNTING:
        return None, f"{name}'s RDP curve cannot be rebuilt from metrics.json"
    spec = ACCOUNTING[name]
    orders = tuple(getattr(acc, spec.orders))
    try:
        curve = np.asarray(spec.curve(metrics), dtype=np.float64)
        sensitivity = spec.sensitivity(metrics) if spec.sensitivity is not None else None
        own = spec.own_epsilon(metrics) if spec.own_epsilon is not None and delta else None
    except ImportError as err:
        return None, f"{name}'s accounting could not be imported ({err})"
    except (KeyError, TypeError, ValueError) as err:
        return None, f"{name}'s metrics.json lacks what its RDP curve needs ({type(err).__name__}: {err})"
    if delta:  # the rebuilt curve must give back the epsilon the run reported (and the module's own function)
        rebuilt = acc.epsilon_from_rdp(curve, float(delta), orders)
        if not math.isclose(rebuilt, float(eps), rel_tol=1e-6):
            return None, f"{name}'s rebuilt RDP curve gives epsilon {rebuilt:.6g}, the run reported {eps:.6g}"
        if own is not None and not math.isclose(rebuilt, own, rel_tol=1e-6):
            return None, f"{name}'s rebuilt RDP curve gives epsilon {rebuilt:.6g}, its module's accounting {own:.6g}"
    elif not spec.pure:
        return None, f"{name} reported delta {delta!r}"
    return TrialCurve(curve, orders, sensitivity), None


__all__ = ["ACCOUNTING", "CURVE_FIELDS", "Accounting", "TrialCurve", "trial_rdp_curve"]
