"""PyG explainer objects built by name, and the checks that a model can be explained link by link."""

from __future__ import annotations

import copy
import inspect
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import (AttentionExplainer, CaptumExplainer, DummyExplainer,
                                               ExplainerAlgorithm, GNNExplainer, GraphMaskExplainer,
                                               PGExplainer)
from torch_geometric.nn import GATConv, GATv2Conv, MessagePassing, TransformerConv

from gnnrisk.errors import ConfigError
from gnnrisk.plugins import Registry, check_constructor

ALGORITHMS = ("gnnexplainer", "pgexplainer", "integrated_gradients", "saliency", "graphmask", "attention",
              "random")
# Every explainer name: the built-ins (built by `build_algorithm`) and the plug-ins of entry-point group
# `gnnrisk.explainers` (PyG ExplainerAlgorithm classes, built with their own settings from the explain config).
EXPLAINERS = Registry("explainer", {name: "gnnrisk.explain.algorithms:build_algorithm" for name in ALGORITHMS})
# The explain stage's own settings (which nodes, how they are scored); a plug-in's other keys are its constructor's.
STAGE_KEYS = ("name", "nodes", "num_nodes", "split", "classes", "num_hops", "subgraph", "top_k", "undirected",
              "ground_truth")
# PGExplainer (PyG) explains only the phenomenon; it gets the model's own predictions as the target,
# so it explains the model as in the PGExplainer paper. All others explain the model directly.
PHENOMENON = ("pgexplainer",)
ATTENTION_LAYERS = (GATConv, GATv2Conv, TransformerConv)
MODEL_CONFIG = dict(mode="multiclass_classification", task_level="node", return_type="raw")


def message_passing_layers(model: nn.Module) -> int:
    """Number of message-passing layers: the hops over which the model reads the graph."""
    return sum(isinstance(m, MessagePassing) for m in model.modules())


def _refuse(name: str, model: str, reads_edges: bool, has_attention: bool) -> None:
    """Raise a ConfigError when a model (`model`, with these traits) cannot carry explanation `name`."""
    if not reads_edges:
        raise ConfigError("explain.name", name, f"the model ({model}) has no message-passing "
                          "layer that reads edge_index (an MLP: model=mlp or privacy=dp_mlp), so no edge can "
                          "explain its output; explain a graph model: model=gcn|sage|gat|gin, or "
                          "privacy=gap_edp|gap_ndp|dpsgd_node")
    if name == "attention" and not has_attention:
        others = ", ".join(a for a in ALGORITHMS if a != "attention")
        raise ConfigError("explain.name", name, f"needs attention weights, which {model} "
                          f"does not have: use model=gat, or one of {others}")


def check_architecture(model_name: str, name: str) -> None:
    """Before training: refuse an explainer that the configured `model.name` cannot carry.

    Every mechanism that reads edges keeps the configured architecture or refuses model=gat (GAP),
    and model=mlp is the only architecture without message passing (privacy=dp_mlp requires it).
    """
    _refuse(name, f"model={model_name}", model_name != "mlp", model_name == "gat")


def check_explainable(model: nn.Module, name: str) -> None:
    """Raise a ConfigError when `model` cannot carry a link-level explanation by algorithm `name`."""
    _refuse(name, type(model).__name__, message_passing_layers(model) > 0,
            any(isinstance(m, ATTENTION_LAYERS) for m in model.modules()))


def is_plugin_explainer(name: object) -> bool:
    """True when `name` is an explainer of a plug-in package (not one of gnnrisk's own)."""
    return isinstance(name, str) and name not in ALGORITHMS and name in EXPLAINERS


def plugin_explainer(cfg: DictConfig) -> tuple[type[ExplainerAlgorithm], dict[str, Any]]:
    """A plug-in's ExplainerAlgorithm class and its settings (the explain config's keys beyond STAGE_KEYS),
    checked against the contract: an ExplainerAlgorithm subclass whose constructor takes exactly those settings."""
    cls = EXPLAINERS.load(cfg.name)
    what = f"explain={cfg.name} (the plug-in {getattr(cls, '__qualname__', cls)!s} of {EXPLAINERS.source(cfg.name)})"
    if not (inspect.isclass(cls) and issubclass(cls, ExplainerAlgorithm)):
        raise ConfigError("explain.name", cfg.name, f"{what} must be a torch_geometric.explain.algorithm."
                          "ExplainerAlgorithm class")
    settings = {str(k): v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in STAGE_KEYS}
    check_constructor("explain", what, cls, settings)
    return cls, settings


def build_algorithm(cfg: DictConfig, model: nn.Module) -> ExplainerAlgorithm:
    """The PyG explanation algorithm that `cfg.name` names, with the config's training settings."""
    name = cfg.name
    if is_plugin_explainer(name):
        cls, settings = plugin_explainer(cfg)
        try:
            return cls(**settings)
        except Exception as err:  # the plug-in's own code failed: one line, naming it
            reason = " ".join(f"{type(err).__name__}: {err}".split())
            raise ConfigError("explain.name", name, f"the plug-in explainer {cls.__qualname__} failed to build "
                              f"({reason})") from None
    if name == "gnnexplainer":
        return GNNExplainer(epochs=int(cfg.epochs), lr=float(cfg.lr))
    if name == "pgexplainer":
        return PGExplainer(epochs=int(cfg.epochs), lr=float(cfg.lr))
    if name == "integrated_gradients":
        return CaptumExplainer("IntegratedGradients", n_steps=int(cfg.n_steps), internal_batch_size=1)
    if name == "saliency":
        return CaptumExplainer("Saliency")
    if name == "graphmask":
        return GraphMaskExplainer(message_passing_layers(model), epochs=int(cfg.epochs), lr=float(cfg.lr),
                                  log=False)
    if name == "attention":
        return AttentionExplainer(reduce=cfg.get("reduce", "max"))
    return DummyExplainer()


def build_explainer(cfg: DictConfig, model: nn.Module) -> Explainer:
    """A PyG Explainer over a private deep copy of `model` (sharing one model breaks later explainers, PyG #9653)."""
    check_explainable(model, cfg.name)
    model = copy.deepcopy(model).eval()
    algorithm = build_algorithm(cfg, model)
    kind = "phenomenon" if cfg.name in PHENOMENON else "model"
    try:
        return Explainer(model=model, algorithm=algorithm, explanation_type=kind, node_mask_type=None,
                         edge_mask_type="object", model_config=MODEL_CONFIG)
    except ValueError as err:  # PyG's `supports()` refused the task
        usable = ", ".join(a for a in ALGORITHMS if a != cfg.name)
        raise ConfigError("explain.name", cfg.name, f"cannot explain this task ({err}); use one of "
                          f"{usable}") from None
