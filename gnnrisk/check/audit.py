"""The canary audit of `gnnrisk-check`: an empirical epsilon lower bound at the mechanism's own unit.

Edge-level mechanisms get the edge canary audit (`attack=canary`: node-disjoint non-adjacent pairs
inserted with probability 1/2, LinkTeller influence as the score), node-level ones the node canary
audit (`attack=canary_nodes`). Both re-run the mechanism on the canary graph and give `eps_lower`, a
one-sided lower bound at 95% confidence. The check fails only where `eps_lower` exceeds the claimed
epsilon: a correct mechanism then fails in at most 5% of the seeds. Where the claimed epsilon is at or
above the largest bound the trials could give (`power`: every evaluation trial guessed right), the
audit cannot refute it and says "inconclusive".
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import Data

from gnnrisk.attack import canary_audit, node_canary_audit
from gnnrisk.attack.audit_bound import eps_from_counts
from gnnrisk.attack.context import AttackContext
from gnnrisk.check.harness import CheckResult
from gnnrisk.privacy import TrainedModel

CONFIDENCE = 0.95
EDGE_SETTINGS = {"delta": 0.01, "chunk": 32}  # num_canaries: as many disjoint pairs as the graph holds
NODE_SETTINGS = {"num_canaries": 50, "degree": 5, "high_degree": 50, "high_degree_share": 0.2,
                 "feature_scale": 40.0, "twins": True, "runs": 4}


def audit_config(cfg: DictConfig, unit: str, num_nodes: int) -> DictConfig:
    """The `attack` node of the audit at `unit` (edge or node), targeting the run's own mechanism."""
    target = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("privacy", "model", "train")}
    if unit == "edge":
        block = {"canary": {"enabled": True, "num_canaries": num_nodes // 2, **EDGE_SETTINGS}}
    else:
        block = {"canary_nodes": {"enabled": True, **NODE_SETTINGS}}
    return OmegaConf.create({"name": "attacks", "target": target, **block})


def power(out: dict[str, Any], prefix: str, delta: float) -> float:
    """The largest eps_lower the audit's evaluation trials could give (every trial guessed right)."""
    pos, neg = out[f"{prefix}_audit_positives"], out[f"{prefix}_audit_negatives"]
    return float(eps_from_counts(pos, pos, 0, neg, delta, CONFIDENCE))


def run_audit(cfg: DictConfig, data: Data, trained: TrainedModel, seed: int) -> dict[str, Any]:
    """The canary audit at the mechanism's unit: its metrics (as `attack=canary[_nodes]` writes them)."""
    unit = trained.privacy.get("privacy_unit")
    attack_cfg = audit_config(cfg, unit, int(data.num_nodes))
    ctx = AttackContext(data=data, trained=trained, cfg=attack_cfg, seed=seed)
    return (canary_audit if unit == "edge" else node_canary_audit).run(ctx)


def check_audit(cfg: DictConfig, data: Data, trained: TrainedModel, seed: int) -> CheckResult:
    """Fail where the canary audit's eps_lower exceeds the epsilon the mechanism claims."""
    privacy = trained.privacy
    eps, unit = privacy.get("epsilon"), privacy.get("privacy_unit")
    if eps is None or unit not in ("edge", "node"):
        return CheckResult("audit", "skip", "not private: no epsilon to audit")
    out = run_audit(cfg, data, trained, seed)
    prefix = "attack_canary" if unit == "edge" else "attack_canary_nodes"
    claimed = max(eps, out.get("attack_canary_nodes_target_epsilon") or eps)  # node canaries re-run on a larger graph
    lower = float(out[f"{prefix}_eps_lower"])
    most = power(out, prefix, float(privacy.get("delta") or 0.0))
    counts = (f"TP {out[f'{prefix}_audit_tp']}/{out[f'{prefix}_audit_positives']}, "
              f"FP {out[f'{prefix}_audit_fp']}/{out[f'{prefix}_audit_negatives']}")
    values = {"eps_lower": lower, "claimed_epsilon": claimed, "power": most, "unit": unit,
              "trials": out[f"{prefix}_eps_lower_trials"], "confidence": CONFIDENCE}
    kind = "edge canaries" if unit == "edge" else "node canaries"
    if lower > claimed:
        return CheckResult("audit", "fail", f"{kind}: eps_lower {lower:.3f} > claimed epsilon {claimed:.4g} "
                           f"({counts}; {CONFIDENCE:.0%} confidence)", values=values)
    if claimed >= most:
        return CheckResult("audit", "inconclusive", f"{kind}: eps_lower {lower:.3f}; these trials can show at most "
                           f"{most:.2f} < claimed {claimed:.4g}: run at a smaller privacy.epsilon", values=values)
    return CheckResult("audit", "pass", f"{kind}: eps_lower {lower:.3f} <= claimed {claimed:.4g} ({counts}; "
                       f"could show up to {most:.2f})", values=values)


__all__ = ["CONFIDENCE", "audit_config", "check_audit", "power", "run_audit"]
