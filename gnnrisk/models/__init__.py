"""GNN risk models built from torch_geometric.nn.models; every model is `forward(x, edge_index)`."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.nn import models as pyg_models
from torch_geometric.nn.models import GCN, GIN, MLP, GraphSAGE

from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.models.hetero import HETERO_DEFAULTS, HETERO_EXTRA, HETERO_MODELS, hetero_config
from gnnrisk.models.hotspot import BASELINE_DEFAULTS, BASELINES, baseline_config
from gnnrisk.models.person_risk import PERSON_BASELINE_DEFAULTS, PERSON_BASELINES, person_baseline_config
from gnnrisk.models.plugin import build_plugin_model, plugin_model_args
from gnnrisk.models.recurrent import RECURRENT_CLASSES, TEMPORAL_MODELS, SnapshotModel
from gnnrisk.plugins import Registry


class GAT(pyg_models.GAT):
    """PyG's GAT, with `output_heads` attention heads (averaged) in the output layer.

    PyG averages `heads` heads in its output layer; Velickovic et al. use one there on Cora and
    CiteSeer (8 on PubMed) with 8 in the hidden layers. `output_heads=None` keeps PyG's behaviour.
    """

    def __init__(self, *args, output_heads: int | None = None, **kwargs):
        object.__setattr__(self, "output_heads", output_heads)  # read by init_conv during super().__init__
        super().__init__(*args, **kwargs)

    def init_conv(self, in_channels, out_channels, **kwargs):
        """The output layer gets `output_heads` heads; the others PyG's `heads`."""
        if getattr(self, "_is_conv_to_out", False) and self.output_heads is not None:
            kwargs["heads"] = self.output_heads
        return super().init_conv(in_channels, out_channels, **kwargs)


GRAPH_MODELS = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}
STATIC_MODELS = (*GRAPH_MODELS, "mlp")
# forecasters on the city (data=synthetic_city): of places (hotspots), of people, or either (the GNNs)
CITY_MODELS = (*BASELINES, *PERSON_BASELINES, *HETERO_MODELS)
MODELS = (*STATIC_MODELS, *TEMPORAL_MODELS, *CITY_MODELS)
# The keys each model reads; any other key (e.g. `+model.foo=1`) would be silently ignored, so it is refused.
COMMON_KEYS = ("name", "hidden_channels", "num_layers", "dropout", "input_dropout", "act", "norm")
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "gcn": (*COMMON_KEYS, "jk"), "gin": (*COMMON_KEYS, "jk"), "mlp": COMMON_KEYS,
    "sage": (*COMMON_KEYS, "jk", "aggr"), "gat": (*COMMON_KEYS, "jk", "heads", "output_heads", "v2"),
    **{name: ("name", "hidden_channels", "num_layers", "dropout") for name in TEMPORAL_MODELS},
    **{name: ("name", *BASELINE_DEFAULTS[name]) for name in BASELINES},
    **{name: ("name", *PERSON_BASELINE_DEFAULTS[name]) for name in PERSON_BASELINES},
    **{name: ("name", *HETERO_DEFAULTS, *HETERO_EXTRA[name]) for name in HETERO_MODELS},
}
# Every model name: the built-ins (built by `build_model`) and the plug-ins of entry-point group `gnnrisk.models`.
MODEL_REGISTRY = Registry("model", {name: "gnnrisk.models:build_model" for name in MODELS})
ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu", "tanh", "selu")
# PyG normalisation layers that build from the channel count alone (others need extra arguments).
NORMS = ("batch_norm", "layer_norm", "instance_norm", "graph_norm", "pair_norm")
JUMPING_KNOWLEDGE = ("last", "cat", "max")
SAGE_AGGREGATIONS = ("sum", "mean", "max", "min")


class FeatureMLP(nn.Module):
    """An MLP over node features that ignores `edge_index`: the reference that never sees a tie."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 dropout: float, norm: str | None = None, act: str = "relu"):
        super().__init__()
        self.mlp = MLP(in_channels=in_channels, hidden_channels=hidden_channels, out_channels=out_channels,
                       num_layers=num_layers, dropout=dropout, norm=norm, act=act)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Node logits from features alone."""
        return self.mlp(x)

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        self.mlp.reset_parameters()


class InputDropout(nn.Module):
    """Dropout on the input features, then `model`: the GCN and GAT papers drop inputs too (PyG does not)."""

    def __init__(self, model: nn.Module, p: float):
        super().__init__()
        self.model, self.dropout = model, nn.Dropout(p)

    def forward(self, x: Tensor, edge_index: Tensor | None = None, **kwargs) -> Tensor:
        """`model` on the features with dropout (in training mode); other arguments (edge weights) pass through."""
        return self.model(self.dropout(x), edge_index, **kwargs)

    def reset_parameters(self) -> None:
        """Re-initialise the wrapped model."""
        self.model.reset_parameters()


def _optional_choice(field: str, value: object, choices: tuple[str, ...]) -> str | None:
    """`value` if it is null or one of `choices`, else a ConfigError listing them."""
    if value is None:
        return None
    if value not in choices:
        raise ConfigError(field, value, "expected null or one of " + ", ".join(choices))
    return str(value)


def is_plugin_model(name: object) -> bool:
    """True when `name` is a model of a plug-in package (not one of gnnrisk's own)."""
    return isinstance(name, str) and name not in MODELS and name in MODEL_REGISTRY


def validate_model(cfg: DictConfig) -> dict[str, object]:
    """Check the `model` group (every key, before any training) and return the constructor's arguments."""
    name = check_choice("model.name", cfg.name, MODEL_REGISTRY)
    if is_plugin_model(name):
        return plugin_model_args(name, MODEL_REGISTRY.load(name), MODEL_REGISTRY.source(name), cfg)
    unknown = [key for key in cfg.keys() if key not in MODEL_KEYS[name]]
    if unknown:
        raise ConfigError(f"model.{unknown[0]}", cfg[unknown[0]],
                          f"model={name} has no such setting; its keys are " + ", ".join(MODEL_KEYS[name]))
    if name in CITY_MODELS:
        check = baseline_config if name in BASELINES else (
            person_baseline_config if name in PERSON_BASELINES else hetero_config)
        return check(name, {str(k): v for k, v in cfg.items()})
    args: dict[str, object] = {
        "hidden_channels": check_number("model.hidden_channels", cfg.hidden_channels, low=1, integer=True),
        "num_layers": check_number("model.num_layers", cfg.num_layers, low=1, integer=True),
        "dropout": check_number("model.dropout", cfg.dropout, low=0.0, high=1.0, high_open=True),
    }
    if name in TEMPORAL_MODELS:
        return args
    args["norm"] = _optional_choice("model.norm", cfg.get("norm"), NORMS)
    args["act"] = check_choice("model.act", cfg.get("act", "relu"), ACTIVATIONS)
    check_number("model.input_dropout", cfg.get("input_dropout", 0.0), low=0.0, high=1.0, high_open=True)
    if name == "mlp":
        return args
    args["jk"] = _optional_choice("model.jk", cfg.get("jk"), JUMPING_KNOWLEDGE)
    if name == "gat":
        heads = check_number("model.heads", cfg.get("heads", 1), low=1, integer=True)
        if args["hidden_channels"] % heads:
            raise ConfigError("model.heads", heads, f"expected a divisor of model.hidden_channels="
                              f"{args['hidden_channels']} (the hidden width is split among the heads)")
        v2 = cfg.get("v2", False)
        if not isinstance(v2, bool):
            raise ConfigError("model.v2", v2, "expected true (GATv2) or false")
        output_heads = cfg.get("output_heads")
        if output_heads is not None:
            output_heads = check_number("model.output_heads", output_heads, low=1, integer=True)
        args.update(heads=heads, v2=v2, output_heads=output_heads)
    if name == "sage":
        args["aggr"] = check_choice("model.aggr", cfg.get("aggr", "mean"), SAGE_AGGREGATIONS)
    return args


def build_model(cfg: DictConfig, in_channels: int, out_channels: int) -> nn.Module:
    """Instantiate the (snapshot) model that `cfg.name` names with the sizes from the config."""
    args = validate_model(cfg)
    if cfg.name in TEMPORAL_MODELS:
        raise ConfigError("model.name", cfg.name, "a forecasting model over periods needs data with periods "
                          "(data=synthetic_temporal); snapshot models: " + ", ".join(STATIC_MODELS))
    if cfg.name in CITY_MODELS:
        raise ConfigError("model.name", cfg.name, "a forecaster of the city needs data=synthetic_city; "
                          "snapshot models: " + ", ".join(STATIC_MODELS))
    if is_plugin_model(cfg.name):  # its settings are all its own (input_dropout included)
        return build_plugin_model(cfg.name, MODEL_REGISTRY.load(cfg.name), args, in_channels, out_channels)
    if cfg.name == "mlp":
        model: nn.Module = FeatureMLP(in_channels=in_channels, out_channels=out_channels, **args)
    else:
        model = GRAPH_MODELS[cfg.name](in_channels=in_channels, out_channels=out_channels, **args)
    p = float(cfg.get("input_dropout", 0.0))
    return InputDropout(model, p) if p > 0 else model


def build_forecaster(cfg: DictConfig, in_channels: int, out_channels: int) -> nn.Module:
    """A model over periods, `forward(xs, graphs) -> [T, N, out]`: recurrent, or a snapshot model per period."""
    args = validate_model(cfg)
    if cfg.name in TEMPORAL_MODELS:
        return RECURRENT_CLASSES[cfg.name](in_channels=in_channels, out_channels=out_channels, **args)
    return SnapshotModel(build_model(cfg, in_channels, out_channels))


def uses_edges(model: nn.Module) -> bool:
    """True when the model's output depends on the graph's ties."""
    inner = model.model if isinstance(model, InputDropout) else model
    return not isinstance(inner, FeatureMLP)


__all__ = ["build_forecaster", "build_model", "CITY_MODELS", "FeatureMLP", "GAT", "InputDropout", "is_plugin_model",
           "MODEL_REGISTRY", "MODELS", "uses_edges", "validate_model"]
