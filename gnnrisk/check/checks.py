"""The interface, determinism and accounting checks of a mechanism (`gnnrisk-check`, and plug-ins' own tests)."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from gnnrisk.check.harness import CheckResult
from gnnrisk.errors import ConfigError
from gnnrisk.privacy import TrainedModel, build_mechanism
from gnnrisk.privacy.base import PRIVACY_FIELDS, PRIVACY_UNITS

# Tolerance of the accounting comparison: PLD's pessimistic discretisation and RDP's order grid differ from
# the exact epsilon by less than this (relative); a mechanism reporting less than that is refuted.
ACCOUNTING_RTOL = 1e-3
BAD_EPSILONS = (-1.0, "one")
# Pure DP (delta 0): the PLD of a Laplace event has an infinite tail at delta 0 exactly, so a pure-DP claim is
# also read at this delta (which can only lower the recomputed epsilon, i.e. favour the mechanism).
PURE_DP_DELTA = 1e-12


def _is_number(value: Any) -> bool:
    """A real, finite number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def interface_problems(name: str, mechanism_unit: str | None, trained: Any, num_nodes: int) -> list[str]:
    """What of the train() contract a trained result breaks: its type, privacy fields and predictions."""
    if not isinstance(trained, TrainedModel):
        return [f"train() returned {type(trained).__name__}, not a TrainedModel"]
    privacy, problems = trained.privacy, []
    missing = [key for key in PRIVACY_FIELDS if key not in privacy]
    if missing:
        problems.append("privacy lacks " + ", ".join(missing))
    unit, eps, delta = privacy.get("privacy_unit"), privacy.get("epsilon"), privacy.get("delta")
    if unit not in PRIVACY_UNITS or unit != mechanism_unit:
        problems.append(f"privacy_unit {unit!r} differs from the class's {mechanism_unit!r}")
    if privacy.get("mechanism") != name:
        problems.append(f"mechanism {privacy.get('mechanism')!r} is not its registry name {name!r}")
    if (unit is None) != (eps is None):
        problems.append(f"epsilon {eps!r} with privacy_unit {unit!r}: a private run reports both, "
                        "a non-private one neither")
    if eps is not None and not (_is_number(eps) and eps > 0):
        problems.append(f"epsilon {eps!r} is not a finite number > 0")
    if delta is not None and not (_is_number(delta) and 0 <= delta < 1):
        problems.append(f"delta {delta!r} is not in [0, 1)")
    prob = trained.predict_proba()
    if prob.dim() != 2 or prob.size(0) != num_nodes:
        problems.append(f"predict_proba() has shape {tuple(prob.shape)}, not [num_nodes={num_nodes}, classes]")
    elif not torch.isfinite(prob).all() or not torch.allclose(prob.sum(1), torch.ones(num_nodes, dtype=prob.dtype),
                                                               atol=1e-4):
        problems.append("predict_proba() rows are not finite probabilities summing to 1")
    return problems


def bad_input_problems(privacy_cfg: DictConfig, private: bool) -> list[str]:
    """A private mechanism must refuse a bad `privacy.epsilon` with a ConfigError (one line), not accept it or crash."""
    if not private or "epsilon" not in privacy_cfg:
        return []
    problems = []
    for bad in BAD_EPSILONS:
        cfg = OmegaConf.merge(privacy_cfg, {"epsilon": bad})
        try:
            build_mechanism(cfg)
        except ConfigError:
            continue
        except Exception as err:  # a crash instead of a one-line refusal is what this check reports
            problems.append(f"privacy.epsilon={bad!r} raised {type(err).__name__}, not a ConfigError")
            continue
        problems.append(f"privacy.epsilon={bad!r} was accepted")
    return problems


def check_interface(name: str, cfg: DictConfig, trained: Any, num_nodes: int) -> CheckResult:
    """The class contract held (else the check never got here), train()'s result and bad-input refusals."""
    mechanism = build_mechanism(cfg.privacy)
    problems = interface_problems(name, mechanism.privacy_unit, trained, num_nodes)
    private = mechanism.privacy_unit is not None
    problems += bad_input_problems(cfg.privacy, private)
    if problems:
        return CheckResult("interface", "fail", "; ".join(problems))
    if not private:
        return CheckResult("interface", "pass", "contract met (not private)")
    refused = "; bad epsilon refused" if "epsilon" in cfg.privacy else ""
    return CheckResult("interface", "pass", f"contract met ({mechanism.privacy_unit}, releases {mechanism.releases})"
                       + refused)


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics that a fixed seed must reproduce exactly (wall times left out)."""
    return {k: v for k, v in metrics.items() if not k.endswith("_seconds")}


def check_determinism(first: tuple[dict[str, Any], TrainedModel], second: tuple[dict[str, Any], TrainedModel]
                      ) -> CheckResult:
    """Two runs with the same seed give the same metrics.json and the same predictions."""
    (m1, t1), (m2, t2) = first, second
    a, b = comparable(m1), comparable(m2)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not (
        isinstance(a.get(k), float) and isinstance(b.get(k), float) and math.isnan(a[k]) and math.isnan(b[k])))
    same_prob = torch.equal(t1.predict_proba().cpu(), t2.predict_proba().cpu())
    if differ or not same_prob:
        shown = ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in differ[:3])
        return CheckResult("determinism", "fail", f"same seed, different results: {shown or 'predictions differ'}"
                           + (f" (+{len(differ) - 3} more)" if len(differ) > 3 else ""))
    return CheckResult("determinism", "pass", f"same seed twice: {len(a)} metrics and all predictions identical")


def independent_epsilons(event: Any, delta: float) -> dict[str, float]:
    """Epsilon of `event` at `delta` by dp_accounting's RDP and PLD accountants (add/remove, else replace-one)."""
    import dp_accounting as dpa
    from dp_accounting.pld import pld_privacy_accountant as pld
    from dp_accounting.rdp import rdp_privacy_accountant as rdp

    logging.getLogger("absl").setLevel(logging.ERROR)  # RDP's per-order convergence notes are not the check's result
    out: dict[str, float] = {}
    relations = (dpa.NeighboringRelation.ADD_OR_REMOVE_ONE, dpa.NeighboringRelation.REPLACE_ONE)
    makers = {"rdp": lambda rel: rdp.RdpAccountant(neighboring_relation=rel),
              "pld": lambda rel: pld.PLDAccountant(neighboring_relation=rel, value_discretization_interval=1e-4)}
    for key, make in makers.items():
        for relation in relations:
            accountant = make(relation)
            if accountant.supports(event):
                accountant.compose(event)
                eps = float(accountant.get_epsilon(delta))
                if delta == 0 and not math.isfinite(eps):
                    eps = float(accountant.get_epsilon(PURE_DP_DELTA))
                out[key] = eps
                out[f"{key}_relation"] = relation.name.lower()  # type: ignore[assignment]
                break
    return out


def check_accounting(mechanism: Any, privacy: dict[str, Any]) -> CheckResult:
    """The epsilon of the declared DpEvent, recomputed by RDP and PLD, is not above the reported epsilon."""
    eps = privacy.get("epsilon")
    if eps is None:
        return CheckResult("accounting", "skip", "not private: no epsilon to recompute")
    event = mechanism.dp_event(privacy)
    if event is None:
        return CheckResult("accounting", "skip", "no dp_event() declared: epsilon not recomputed independently")
    try:
        import dp_accounting  # noqa: F401
    except ImportError:
        return CheckResult("accounting", "skip", "dp_accounting is not installed (pip install dp-accounting)")
    delta = float(privacy.get("delta") or 0.0)
    found = independent_epsilons(event, delta)
    bounds = [found[k] for k in ("rdp", "pld") if k in found]
    if not bounds:
        return CheckResult("accounting", "fail",
                           f"neither the RDP nor the PLD accountant supports {type(event).__name__}")
    values = dict(found)
    text = ", ".join(f"{k.upper()} {found[k]:.4g}" for k in ("rdp", "pld") if k in found)
    if eps < min(bounds) * (1 - ACCOUNTING_RTOL):
        return CheckResult("accounting", "fail", f"reports epsilon {eps:.4g} at delta {delta:.3g}, but its DpEvent "
                           f"spends {text}", values=values)
    return CheckResult("accounting", "pass", f"reported {eps:.4g} >= recomputed {text} (delta {delta:.3g})",
                       values=values)


__all__ = ["check_accounting", "check_determinism", "check_interface", "independent_epsilons", "interface_problems"]
