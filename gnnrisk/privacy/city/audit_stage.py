"""The attack stage on the city (data=synthetic_city): the canary audit at the run's unit, and the attacks per
relation and node type (`gnnrisk.privacy.city.attacks`, `attacks_membership`).

`attack=canary`: the audit of `gnnrisk.privacy.city.audit` that tests the run's unit: edge canaries on the released
relation (`edgerand`, `lapgraph`, `hetero_gap` at an edge unit), canary people (`hetero_gap`, unit person) or canary
incidents (`hetero_gap`, unit incident). `hetero_gap` is audited with the noise the run calibrated for its
epsilon (mode "run"): the canaries see one of its releases, so `attack_canary_eps_lower` is compared to the
run's composed epsilon and to that one release's (`attack_canary_epsilon_release`).
`attack=lsa` (link stealing on the forecasts), `attack=linkteller` (influence of a node's features on a tied
node's forecast) and `attack=mia` (membership of the forecast type's labels in the loss) attack the run's
forecaster; they write `attack_<name>_*`, never `eps_lower`. Several run together (`attack=[lsa,mia]`), in the
order of `gnnrisk.attack.ATTACKS`; the homogeneous members that do not run on the city are refused in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, Refusals, check_number
from gnnrisk.privacy.city.attack_model import CityRun
from gnnrisk.privacy.city.mechanisms import CityMechanism
from gnnrisk.train.city_forecast import CityForecast

MEMBER = "canary"
AUDITED = ("edgerand", "lapgraph", "hetero_gap")  # the mechanisms the canary audits have trials for
CITY_ATTACKS = ("lsa", "mia", "linkteller", MEMBER)  # the members of the attack group that run on the city
KEYS = ("eps_lower", "claimed_epsilon", "epsilon_release", "epsilon_exact", "eps_ceiling", "canaries", "included",
        "tp", "fp", "positives", "negatives", "mode", "basis", "trials", "seconds")


def validate_city_attack(stage_cfg: DictConfig, mechanism: CityMechanism | None, target: str, model: str | None = None,
                         data: HeteroData | None = None, train_cfg: Mapping[str, Any] | None = None,
                         seed: int = 0) -> None:
    """Each selected member checked against the run (one line per bad field, all at once) before any training;
    `mechanism`, `model` or `data` None (refused apart): the checks that need them are skipped."""
    from gnnrisk.attack import selected_attacks
    from gnnrisk.privacy.city.attacks import validate_linkteller, validate_lsa
    from gnnrisk.privacy.city.attacks_membership import validate_mia

    refusals = Refusals()
    for member in selected_attacks(stage_cfg):
        with refusals.check():
            if member not in CITY_ATTACKS:
                raise ConfigError("attack", member, "does not run on the city (data=synthetic_city); there: "
                                  + ", ".join(CITY_ATTACKS))
            if member == MEMBER:
                validate_canary(stage_cfg, mechanism, target)
            elif member == "lsa":
                validate_lsa(stage_cfg.lsa, data, target)
            elif member == "linkteller":
                validate_linkteller(stage_cfg.linkteller, data, mechanism, model, target)
            else:
                validate_mia(data, mechanism, model, target, train_cfg, seed)
    refusals.raise_any()


def validate_canary(stage_cfg: DictConfig, mechanism: CityMechanism | None, target: str) -> None:
    """The canary audit, on a private run whose unit it tests; its settings checked (one line each)."""
    if mechanism is None:
        return
    if mechanism.unit is None:
        raise ConfigError("attack", MEMBER, "the canary audit tests a private run's unit: choose privacy=edgerand, "
                          "lapgraph or hetero_gap")
    if mechanism.name not in AUDITED:
        raise ConfigError("attack", MEMBER, f"the canary audit has no trial for privacy={mechanism.name} yet (its "
                          "releases are the weights of a DP-SGD fit); audited: " + ", ".join(AUDITED))
    if mechanism.name == "hetero_gap" and target != "place":
        raise ConfigError("eval.target", target, "the canary audit of hetero_gap calibrates the run's noise as a "
                          "place forecast: audit with eval.target=place")
    block = stage_cfg.canary
    check_number("attack.canary.num_canaries", block.get("num_canaries"), low=2, integer=True)
    check_number("attack.canary.delta", block.get("delta"), low=0.0, high=1.0, high_open=True)


def run_city_attack(stage_cfg: DictConfig, data: HeteroData, mechanism: CityMechanism, origins: list[int],
                    seed: int, forecast: CityForecast | None = None, model_cfg: Mapping[str, Any] | None = None,
                    train_cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every selected member's `attack_<name>_*` keys; the canary audit's also the headline `eps_lower`.
    The attacks on the forecaster read its `forecast`, `model_cfg` (with its name) and `train_cfg`."""
    from gnnrisk.attack import selected_attacks
    from gnnrisk.privacy.city.attacks import run_linkteller, run_lsa
    from gnnrisk.privacy.city.attacks_membership import run_mia

    members = selected_attacks(stage_cfg)
    if members == [MEMBER]:
        return run_canary(stage_cfg, data, mechanism, origins, seed)
    assert forecast is not None and model_cfg is not None, "the attacks on the forecaster read the run"
    run = CityRun(data, mechanism, str(model_cfg["name"]), dict(model_cfg), train_settings(train_cfg), forecast.target,
                  list(origins), seed, forecast)
    attacks = {MEMBER: lambda: run_canary(stage_cfg, data, mechanism, origins, seed),
               "lsa": lambda: run_lsa(stage_cfg.lsa, run),
               "linkteller": lambda: run_linkteller(stage_cfg.linkteller, run), "mia": lambda: run_mia(run)}
    out: dict[str, Any] = {}
    for member in members:
        out.update(attacks[member]())
    return out


def train_settings(train_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The train group as a plain dict (the forecaster's defaults when None)."""
    if isinstance(train_cfg, DictConfig):
        return {str(k): v for k, v in OmegaConf.to_container(train_cfg, resolve=True).items()}
    return dict(train_cfg or {})


def run_canary(stage_cfg: DictConfig, data: HeteroData, mechanism: CityMechanism, origins: list[int],
               seed: int) -> dict[str, Any]:
    """`attack_canary_*` keys and the headline `eps_lower` of the unit's canary audit."""
    from gnnrisk.privacy.city.audit import (
        incident_canary_audit,
        person_canary_audit,
        relation_canary_audit,
    )

    audit = {"edge": relation_canary_audit, "person": person_canary_audit,
             "incident": incident_canary_audit}[mechanism.unit.kind]
    block = stage_cfg.canary
    out = audit(data, mechanism, int(block.num_canaries), seed, delta=float(block.delta), mode="run",
                origins=tuple(origins))
    keys = {f"attack_canary_{k}": out[k] for k in KEYS if k in out}
    return {**keys, "eps_lower": out["eps_lower"], "eps_lower_attack": MEMBER,
            "eps_lower_relation": str(mechanism.unit), "eps_lower_basis": out["basis"],
            "eps_lower_trials": out["trials"], "eps_lower_confidence": 0.95}
