"""APPNP (Klicpera, Bojchevski & Guennemann, ICLR 2019) as a gnnrisk model plug-in: predict, then propagate.

A model plug-in is a torch.nn.Module class that gnnrisk builds as `cls(in_channels, out_channels,
**settings)` (settings: the `model` config without `name`) and calls as `forward(x, edge_index)`.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import APPNP, MLP


class APPNPNet(nn.Module):
    """An MLP on node features, then K steps of personalised-PageRank propagation with teleport `alpha`."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, k: int = 10, alpha: float = 0.1):
        super().__init__()
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.mlp = MLP(in_channels=in_channels, hidden_channels=hidden_channels, out_channels=out_channels,
                       num_layers=num_layers, dropout=dropout)
        self.propagate = APPNP(K=k, alpha=alpha)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node logits: the MLP's predictions propagated over the graph."""
        return self.propagate(self.mlp(x), edge_index)
