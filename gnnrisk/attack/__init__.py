"""Empirical privacy attacks and auditing: the `attack` stage of a run.

`attack` is a Hydra multi-select group: `attack=[lsa,mia]` merges `configs/attack/lsa.yaml` and
`mia.yaml` into one node `{name: attacks, lsa: {...}, mia: {...}, target: ..., reference: ...}`;
every attack whose block is present runs, in the order of `ATTACKS`, after one training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch_geometric.data import Data

from gnnrisk.attack.context import AttackContext
from gnnrisk.errors import ConfigError
from gnnrisk.models import validate_model
from gnnrisk.plugins import Registry
from gnnrisk.privacy import TrainedModel

log = logging.getLogger(__name__)

# attack name (its config block under `attack`) -> module holding `run(ctx) -> dict` (and optionally
# `validate(cfg, data)`); plug-ins add theirs under entry-point group `gnnrisk.attacks` (gnnrisk.plugins).
BUILTIN_ATTACKS: dict[str, str] = {
    "lsa": "gnnrisk.attack.lsa",
    "mia": "gnnrisk.attack.membership",
    "linkteller": "gnnrisk.attack.linkteller",
    "explain_sim": "gnnrisk.attack.explanation_leak",
    "adjacency": "gnnrisk.attack.adjacency_audit",
    "canary": "gnnrisk.attack.canary_audit",
    "canary_nodes": "gnnrisk.attack.node_canary_audit",
}
ATTACKS = Registry("attack", BUILTIN_ATTACKS)
# Attacks that produce an epsilon lower bound (`attack_<name>_eps_lower`), in order of preference for `eps_lower`.
AUDITS = ("adjacency", "canary", "canary_nodes")
# The neighbouring relation each audit's trials toggle: what its bound is a bound on.
AUDIT_RELATIONS = {"adjacency": "edge", "canary": "edge", "canary_nodes": "node"}
SHARED_KEYS = ("name", "target", "reference")


def selected_attacks(stage_cfg: DictConfig) -> list[str]:
    """The attacks selected under `attack`, in run order; unknown blocks are a ConfigError.

    A member's block carries `enabled: true`. A block without it holds only settings that an
    experiment or an override gave for an attack the run did not select (e.g. `experiment=attacks
    attack=lsa` keeps the study's `attack.linkteller.num_nodes`): it is ignored, with a log line.
    """
    keys = [k for k in stage_cfg.keys() if k not in SHARED_KEYS]
    for key in keys:
        if key not in ATTACKS:
            raise ConfigError("attack", key, "expected one or more of " + ", ".join(ATTACKS) + ", e.g. attack=[lsa,mia]")
    unselected = [k for k in keys if stage_cfg[k].get("enabled") is None]
    if unselected:
        log.info("attack settings for %s ignored: not selected (add them to attack=[...])", ", ".join(unselected))
    chosen = [k for k in keys if stage_cfg[k].get("enabled")]
    if not chosen:
        raise ConfigError("attack", stage_cfg.get("name"), "no attack selected; e.g. attack=[lsa,mia] or attack=all")
    return [name for name in ATTACKS if name in chosen]


def member_of(stage_cfg: DictConfig) -> str | list[str]:
    """The members chosen with `attack=...` (the group's node is named `attacks`): one name, or the list."""
    keys = [k for k in stage_cfg.keys()
            if k not in SHARED_KEYS and isinstance(stage_cfg[k], DictConfig) and stage_cfg[k].get("enabled")]
    chosen = [name for name in ATTACKS if name in keys]
    return chosen[0] if len(chosen) == 1 else chosen or str(stage_cfg.get("name"))


def headline_bound(out: dict[str, Any]) -> dict[str, Any]:
    """`eps_lower`: the first audit in `AUDITS` order that produced a bound, with how its trials were drawn.

    A fixed preference (not the larger of two bounds) keeps the 95% confidence of the one reported.
    """
    ran = [name for name in AUDITS if out.get(f"attack_{name}_eps_lower") is not None]
    if not ran:
        return {}
    best = ran[0]
    return {"eps_lower": out[f"attack_{best}_eps_lower"], "eps_lower_attack": best,
            "eps_lower_relation": AUDIT_RELATIONS[best],
            "eps_lower_basis": out[f"attack_{best}_eps_lower_basis"],
            "eps_lower_trials": out[f"attack_{best}_eps_lower_trials"], "eps_lower_confidence": 0.95}


def attack_module(name: str) -> Any:
    """The module of attack `name`; a plug-in without `run(ctx)` is refused in one line."""
    module = ATTACKS.load(name)
    if not callable(getattr(module, "run", None)):
        raise ConfigError("attack", name, f"{ATTACKS[name]} of {ATTACKS.source(name)} has no run(ctx) function")
    return module


def validate_stage(stage_cfg: DictConfig, data: Data, model_name: str) -> None:
    """Check every selected attack's settings against the dataset before any training."""
    if stage_cfg.get("reference") is not None:
        validate_model(stage_cfg.reference)
    for name in selected_attacks(stage_cfg):
        module = attack_module(name)
        if hasattr(module, "validate"):
            module.validate(stage_cfg, data)


def run_stage(stage_cfg: DictConfig, data: Data, trained: TrainedModel, run_dir: Path, seed: int) -> dict[str, Any]:
    """Run every selected attack against the released model and return their flat metrics."""
    ctx = AttackContext(data=data, trained=trained, cfg=stage_cfg, seed=seed)
    out: dict[str, Any] = {}
    for name in selected_attacks(stage_cfg):
        log.info("attack %s", name)
        out.update(attack_module(name).run(ctx))
    out.update(headline_bound(out))
    return out


__all__ = ["ATTACKS", "BUILTIN_ATTACKS", "attack_module", "run_stage", "validate_stage"]
