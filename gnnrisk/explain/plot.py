"""PNG drawing of one explained neighbourhood: edge width by importance, ground-truth edges marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def undirected_edges(src: np.ndarray, dst: np.ndarray, score: np.ndarray, causal: np.ndarray) -> pd.DataFrame:
    """Merge both directions of each tie: the larger importance, causal if either direction is."""
    frame = pd.DataFrame({"u": np.minimum(src, dst), "v": np.maximum(src, dst), "score": score, "causal": causal})
    return frame.groupby(["u", "v"], as_index=False).agg(score=("score", "max"), causal=("causal", "max"))


def draw_explanation(path: Path, node: int, src: np.ndarray, dst: np.ndarray, score: np.ndarray,
                     causal: np.ndarray | None, title: str, seed: int = 0) -> None:
    """Draw the computation edges of `node`; width by importance, causal edges in red, the target as a star."""
    edges = undirected_edges(src, dst, score, np.zeros_like(score, dtype=bool) if causal is None else causal)
    span = edges["score"].max() - edges["score"].min()
    weight = (edges["score"] - edges["score"].min()) / span if span > 0 else edges["score"] * 0 + 0.5
    graph = nx.Graph()
    graph.add_node(node)
    graph.add_edges_from(zip(edges["u"].tolist(), edges["v"].tolist()))
    pos = nx.spring_layout(graph, seed=seed)
    fig, ax = plt.subplots(figsize=(7, 7))
    edgelist = list(zip(edges["u"].tolist(), edges["v"].tolist()))
    colors = np.where(edges["causal"].to_numpy(), "tab:red", "tab:gray")
    nx.draw_networkx_edges(graph, pos, edgelist=edgelist, width=(0.3 + 5.0 * weight).to_numpy(),
                           edge_color=colors.tolist(), alpha=0.8, ax=ax)
    others = [v for v in graph.nodes if v != node]
    nx.draw_networkx_nodes(graph, pos, nodelist=others, node_size=30, node_color="tab:blue", ax=ax)
    nx.draw_networkx_nodes(graph, pos, nodelist=[node], node_size=300, node_shape="*", node_color="gold",
                           edgecolors="black", ax=ax)
    handles = [plt.Line2D([], [], color="tab:gray", lw=2, label="edge (width = importance)"),
               plt.Line2D([], [], marker="*", color="gold", markeredgecolor="black", lw=0, markersize=14,
                          label=f"explained node {node}")]
    if causal is not None:
        handles.insert(1, plt.Line2D([], [], color="tab:red", lw=2, label="ground-truth causal edge"))
    ax.legend(handles=handles, loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
