"""GNN risk models built from torch_geometric.nn.models; every model is `forward(x, edge_index)`."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.nn.models import GAT, GCN, GIN, MLP, GraphSAGE

from gnnrisk.errors import ConfigError, check_choice, check_number

GRAPH_MODELS = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}
MODELS = (*GRAPH_MODELS, "mlp")
# The keys each model reads; any other key (e.g. `+model.act=elu`) would be silently ignored, so it is refused.
COMMON_KEYS = ("name", "hidden_channels", "num_layers", "dropout", "norm")
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "gcn": (*COMMON_KEYS, "jk"), "gin": (*COMMON_KEYS, "jk"), "mlp": COMMON_KEYS,
    "sage": (*COMMON_KEYS, "jk", "aggr"), "gat": (*COMMON_KEYS, "jk", "heads", "v2"),
}
# PyG normalisation layers that build from the channel count alone (others need extra arguments).
NORMS = ("batch_norm", "layer_norm", "instance_norm", "graph_norm", "pair_norm")
JUMPING_KNOWLEDGE = ("last", "cat", "max")
SAGE_AGGREGATIONS = ("sum", "mean", "max", "min")


class FeatureMLP(nn.Module):
    """An MLP over node features that ignores `edge_index`: the reference that never sees a tie."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 dropout: float, norm: str | None = None):
        super().__init__()
        self.mlp = MLP(in_channels=in_channels, hidden_channels=hidden_channels, out_channels=out_channels,
                       num_layers=num_layers, dropout=dropout, norm=norm)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Node logits from features alone."""
        return self.mlp(x)

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        self.mlp.reset_parameters()


def _optional_choice(field: str, value: object, choices: tuple[str, ...]) -> str | None:
    """`value` if it is null or one of `choices`, else a ConfigError listing them."""
    if value is None:
        return None
    if value not in choices:
        raise ConfigError(field, value, "expected null or one of " + ", ".join(choices))
    return str(value)


def validate_model(cfg: DictConfig) -> dict[str, object]:
    """Check the `model` group (every key, before any training) and return the constructor's arguments."""
    name = check_choice("model.name", cfg.name, MODELS)
    unknown = [key for key in cfg.keys() if key not in MODEL_KEYS[name]]
    if unknown:
        raise ConfigError(f"model.{unknown[0]}", cfg[unknown[0]],
                          f"model={name} has no such setting; its keys are " + ", ".join(MODEL_KEYS[name]))
    args: dict[str, object] = {
        "hidden_channels": check_number("model.hidden_channels", cfg.hidden_channels, low=1, integer=True),
        "num_layers": check_number("model.num_layers", cfg.num_layers, low=1, integer=True),
        "dropout": check_number("model.dropout", cfg.dropout, low=0.0, high=1.0, high_open=True),
        "norm": _optional_choice("model.norm", cfg.get("norm"), NORMS),
    }
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
        args.update(heads=heads, v2=v2)
    if name == "sage":
        args["aggr"] = check_choice("model.aggr", cfg.get("aggr", "mean"), SAGE_AGGREGATIONS)
    return args


def build_model(cfg: DictConfig, in_channels: int, out_channels: int) -> nn.Module:
    """Instantiate the model that `cfg.name` names with the sizes from the config."""
    args = validate_model(cfg)
    if cfg.name == "mlp":
        return FeatureMLP(in_channels=in_channels, out_channels=out_channels, **args)
    return GRAPH_MODELS[cfg.name](in_channels=in_channels, out_channels=out_channels, **args)


def uses_edges(model: nn.Module) -> bool:
    """True when the model's output depends on the graph's ties."""
    return not isinstance(model, FeatureMLP)


__all__ = ["build_model", "FeatureMLP", "MODELS", "uses_edges", "validate_model"]
