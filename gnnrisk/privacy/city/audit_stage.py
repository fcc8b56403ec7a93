"""`attack=canary` on the city: the one-run canary audit at the run's unit, against the run's own noise.

The audit of `gnnrisk.privacy.city.audit` that tests the run's unit: edge canaries on the released relation
(`edgerand`, `lapgraph`, `hetero_gap` at an edge unit), canary people (`hetero_gap`, unit person) or canary
incidents (`hetero_gap`, unit incident). `hetero_gap` is audited with the noise the run calibrated for its
epsilon (mode "run"): the canaries see one of its releases, so `attack_canary_eps_lower` is compared to the
run's composed epsilon and to that one release's (`attack_canary_epsilon_release`). The other attacks
(link stealing, LinkTeller, membership inference) do not run on the city yet.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.privacy.city.mechanisms import CityMechanism

MEMBER = "canary"
KEYS = ("eps_lower", "claimed_epsilon", "epsilon_release", "epsilon_exact", "eps_ceiling", "canaries", "included",
        "tp", "fp", "positives", "negatives", "mode", "basis", "trials", "seconds")


def validate_city_attack(stage_cfg: DictConfig, mechanism: CityMechanism | None, target: str) -> None:
    """Only the canary audit, on a private run whose unit it tests (`mechanism` None: refused apart, not checked
    here); its settings checked (one line each)."""
    from gnnrisk.attack import member_of

    member = member_of(stage_cfg)
    if member != MEMBER:
        raise ConfigError("attack", member, "on the city the attack stage is the canary audit at the run's unit "
                          "(attack=canary); link stealing, LinkTeller and membership inference do not run there yet")
    if mechanism is None:
        return
    if mechanism.unit is None:
        raise ConfigError("attack", MEMBER, "the canary audit tests a private run's unit: choose privacy=edgerand, "
                          "lapgraph or hetero_gap")
    if mechanism.name == "hetero_gap" and target != "place":
        raise ConfigError("eval.target", target, "the canary audit of hetero_gap calibrates the run's noise as a "
                          "place forecast: audit with eval.target=place")
    block = stage_cfg.canary
    check_number("attack.canary.num_canaries", block.get("num_canaries"), low=2, integer=True)
    check_number("attack.canary.delta", block.get("delta"), low=0.0, high=1.0, high_open=True)


def run_city_attack(stage_cfg: DictConfig, data: HeteroData, mechanism: CityMechanism, origins: list[int],
                    seed: int) -> dict[str, Any]:
    """`attack_canary_*` keys and the headline `eps_lower` of the unit's canary audit."""
    from gnnrisk.privacy.city.audit import incident_canary_audit, person_canary_audit, relation_canary_audit

    audit = {"edge": relation_canary_audit, "person": person_canary_audit,
             "incident": incident_canary_audit}[mechanism.unit.kind]
    block = stage_cfg.canary
    out = audit(data, mechanism, int(block.num_canaries), seed, delta=float(block.delta), mode="run",
                origins=tuple(origins))
    keys = {f"attack_canary_{k}": out[k] for k in KEYS if k in out}
    return {**keys, "eps_lower": out["eps_lower"], "eps_lower_attack": MEMBER,
            "eps_lower_relation": str(mechanism.unit), "eps_lower_basis": out["basis"],
            "eps_lower_trials": out["trials"], "eps_lower_confidence": 0.95}
