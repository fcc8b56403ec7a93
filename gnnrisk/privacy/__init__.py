"""Privacy mechanisms: each one trains a model on a dataset and reports what it spent.

A mechanism is looked up by `privacy.name` in `MECHANISMS` ("module:Class": the built-ins below plus
the plug-ins of entry-point group `gnnrisk.mechanisms`, gnnrisk.plugins); its class, a `Mechanism`
subclass meeting the contract documented there, is built from the `privacy` config group.
"""

from __future__ import annotations

from omegaconf import DictConfig

from gnnrisk.errors import ConfigError, check_choice
from gnnrisk.plugins import Registry
from gnnrisk.privacy.base import Mechanism, TrainedModel

BUILTIN_MECHANISMS: dict[str, str] = {
    "none": "gnnrisk.privacy.base:NonPrivate",
    "edgerand": "gnnrisk.privacy.graph_perturbation:EdgeRand",
    "lapgraph": "gnnrisk.privacy.graph_perturbation:LapGraph",
    "gap_edp": "gnnrisk.privacy.gap:GapEdp",
    "gap_ndp": "gnnrisk.privacy.gap:GapNdp",
    "progap_edp": "gnnrisk.privacy.progap:ProgapEdp",
    "progap_ndp": "gnnrisk.privacy.progap:ProgapNdp",
    "dpdgc_edp": "gnnrisk.privacy.dpdgc:DpdgcEdp",
    "dpdgc_ndp": "gnnrisk.privacy.dpdgc:DpdgcNdp",
    "dpdgc_kndp": "gnnrisk.privacy.dpdgc_kndp:DpdgcKndp",
    "dpsgd_node": "gnnrisk.privacy.dpsgd_node:DpsgdNode",
    "dp_mlp": "gnnrisk.privacy.dp_mlp:DpMlp",
}


MECHANISMS = Registry("mechanism", BUILTIN_MECHANISMS)


def mechanism_class(name: str) -> type[Mechanism]:
    """The class registered under `name`, refused in one line unless it is a Mechanism meeting the contract."""
    name = check_choice("privacy.name", name, MECHANISMS)
    cls = MECHANISMS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, Mechanism)):
        raise ConfigError("privacy.name", name, f"{MECHANISMS[name]} of {MECHANISMS.source(name)} is not a "
                          "subclass of gnnrisk.privacy.base.Mechanism")
    broken = cls.contract_violation()
    if broken:
        raise ConfigError("privacy.name", name, f"{MECHANISMS[name]} of {MECHANISMS.source(name)} breaks the "
                          f"Mechanism contract: {broken}")
    return cls


def build_mechanism(cfg: DictConfig) -> Mechanism:
    """Instantiate the mechanism that `cfg.name` names, validating its config."""
    return mechanism_class(cfg.name)(cfg)


__all__ = ["BUILTIN_MECHANISMS", "MECHANISMS", "Mechanism", "TrainedModel", "build_mechanism", "mechanism_class"]
