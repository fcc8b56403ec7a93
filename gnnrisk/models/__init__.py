"""GNN risk models built from torch_geometric.nn.models; every model is `forward(x, edge_index)`."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.nn.models import GAT, GCN, GIN, MLP, GraphSAGE

from gnnrisk.errors import check_choice, check_number

GRAPH_MODELS = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}
MODELS = (*GRAPH_MODELS, "mlp")


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


def build_model(cfg: DictConfig, in_channels: int, out_channels: int) -> nn.Module:
    """Instantiate the model that `cfg.name` names with the sizes from the config."""
    name = check_choice("model.name", cfg.name, MODELS)
    hidden = check_number("model.hidden_channels", cfg.hidden_channels, low=1, integer=True)
    layers = check_number("model.num_layers", cfg.num_layers, low=1, integer=True)
    dropout = check_number("model.dropout", cfg.dropout, low=0.0, high=1.0, high_open=True)
    norm = cfg.get("norm")
    if name == "mlp":
        return FeatureMLP(in_channels, hidden, out_channels, layers, dropout, norm)
    kwargs = {}
    if name == "gat":
        kwargs["heads"] = check_number("model.heads", cfg.get("heads", 1), low=1, integer=True)
        kwargs["v2"] = bool(cfg.get("v2", False))
    if name == "sage":
        kwargs["aggr"] = cfg.get("aggr", "mean")
    return GRAPH_MODELS[name](in_channels=in_channels, hidden_channels=hidden, out_channels=out_channels,
                              num_layers=layers, dropout=dropout, norm=norm, jk=cfg.get("jk"), **kwargs)


def uses_edges(model: nn.Module) -> bool:
    """True when the model's output depends on the graph's ties."""
    return not isinstance(model, FeatureMLP)


__all__ = ["build_model", "FeatureMLP", "MODELS", "uses_edges"]
