"""hetero_sage as pure functions of its parameters, with exact per-example gradients of each place's loss over its
K-hop computation graph (`hetero_dpsgd`, docs/privacy_city_dpsgd.md).

The forecaster is `model=hetero_sage` (`gnnrisk.models.hetero`: PyG's to_hetero of SAGEConv + skip linear,
LayerNorm, ReLU, a linear head), initialised by that module and run here on the message relations only: the
relations whose fan-out per source node the caps bound (knows <= D_knows, lives_at 1, frequents <= D_frequents,
involved_in <= D_involved recorded incidents) or the public grid bounds (adjacent), and occurred_at (one place per
incident). The reverse relations out of a place (its residents, visitors, incidents) have no cap and are not read:
through them one person would reach every place within two hops.

Per-example gradients are exact and vectorised. Layer K and the head are local to a place p given its inputs
(the mean of each relation's layer-(K-1) rows over p's in-neighbours, and p's own row): `vmap(grad)` over places
gives each example's gradient of those parameters and of its inputs. A layer-k row depends on the layer-k
parameters only through its own node's inputs, so example p's gradient of layer-k parameters is the sum, over
the (p, n) pairs of nodes n in p's computation graph at depth K - k, of the vector-Jacobian product of node n's
layer function with the cotangent d loss_p / d h^k_n, which the pairs one layer up pass down their in-edges
(divided by the in-degree, the mean). Pairs are coalesced per (example, node) and handled in vectorised chunks;
no loop runs over nodes or examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import grad, vmap
from torch_geometric.data import HeteroData

from gnnrisk.models.hetero import HETERO_MODELS

Relation = tuple[str, str, str]
TARGET = "place"
MESSAGE_RELATIONS: tuple[Relation, ...] = (
    ("person", "knows", "person"), ("person", "lives_at", "place"), ("person", "frequents", "place"),
    ("person", "involved_in", "incident"), ("incident", "occurred_at", "place"), ("place", "adjacent", "place"))
NODE_TYPES = ("person", "place", "incident")
CHUNK = 4096  # (example, node) pairs per vectorised chunk: bounds the per-pair gradients held at once
Params = dict[str, Tensor]


def rel_key(rel: Relation) -> str:
    """The relation's name in to_hetero's parameter names."""
    return "__".join(rel)


def relations_into(node_type: str) -> list[Relation]:
    """The message relations whose destination is `node_type`, in a fixed order."""
    return [r for r in MESSAGE_RELATIONS if r[2] == node_type]


@dataclass
class Graph:
    """One snapshot on the message relations: features per type, and per relation the edges sorted by destination
    (sources `src`, CSR pointers `ptr`) with the in-degrees `deg`."""

    x: dict[str, Tensor]
    num: dict[str, int]
    src: dict[Relation, Tensor]
    dst: dict[Relation, Tensor]
    ptr: dict[Relation, Tensor]
    deg: dict[Relation, Tensor]


def message_graph(snap: HeteroData) -> Graph:
    """The snapshot's features and message relations, indexed by destination."""
    num = {t: int(snap[t].x.size(0)) for t in NODE_TYPES}
    src, dst, ptr, deg = {}, {}, {}, {}
    for rel in MESSAGE_RELATIONS:
        ei = snap[rel].edge_index
        order = torch.argsort(ei[1] * max(num[rel[0]], 1) + ei[0])
        src[rel], dst[rel] = ei[0, order], ei[1, order]
        counts = torch.bincount(dst[rel], minlength=num[rel[2]])
        deg[rel] = counts
        ptr[rel] = F.pad(torch.cumsum(counts, 0), (1, 0))
    return Graph({t: snap[t].x.float() for t in NODE_TYPES}, num, src, dst, ptr, deg)


def message_snapshot(graph: Graph) -> HeteroData:
    """The graph as HeteroData (the message relations only), for the to_hetero module."""
    out = HeteroData()
    for t in NODE_TYPES:
        out[t].x = graph.x[t]
    for rel in MESSAGE_RELATIONS:
        out[rel].edge_index = torch.stack([graph.src[rel], graph.dst[rel]])
    return out


def needed_types(layers: int) -> list[set[str]]:
    """needed[k]: the node types whose layer-k rows reach a place's output (k = 0..K)."""
    needed = [set() for _ in range(layers + 1)]
    needed[layers] = {TARGET}
    for k in range(layers, 0, -1):
        needed[k - 1] = needed[k] | {r[0] for t in needed[k] for r in relations_into(t)}
    return needed


def layer_names(k: int, node_type: str) -> list[str]:
    """Parameter names of layer k (1-based) for destination `node_type`, as to_hetero names them."""
    out = []
    for rel in relations_into(node_type):
        conv = f"net.convs.{k - 1}.{rel_key(rel)}"
        out += [f"{conv}.lin_l.weight", f"{conv}.lin_l.bias", f"{conv}.lin_r.weight"]
    return out + [f"net.skips.{k - 1}.{node_type}.weight", f"net.skips.{k - 1}.{node_type}.bias",
                  f"net.norms.{k - 1}.{node_type}.weight", f"net.norms.{k - 1}.{node_type}.bias"]


HEAD_NAMES = [f"net.head.{TARGET}.weight", f"net.head.{TARGET}.bias"]


def param_names(layers: int) -> list[str]:
    """The parameters that a place's output depends on."""
    needed = needed_types(layers)
    return [n for k in range(1, layers + 1) for t in sorted(needed[k]) for n in layer_names(k, t)] + HEAD_NAMES


def init_params(graph: Graph, cfg: dict[str, Any]) -> Params:
    """hetero_sage's initial parameters on the message relations (the caller seeds torch's generator)."""
    module = HETERO_MODELS["hetero_sage"](message_snapshot(graph).metadata(), cfg, TARGET)
    with torch.no_grad():
        module(message_snapshot(graph))  # materialises the lazy input layers
    state = dict(module.named_parameters())
    return {n: state[n].detach().clone() for n in param_names(int(cfg["num_layers"]))}


def node_layer(params: Params, k: int, node_type: str, aggs: list[Tensor], h: Tensor) -> Tensor:
    """Layer k at nodes of `node_type` (rows [n, F] or one row [F]): relu(LayerNorm(sum over relations r into the
    type of lin_l(mean of r's sources) + lin_r(h), + skip(h)))."""
    pre = F.linear(h, params[f"net.skips.{k - 1}.{node_type}.weight"], params[f"net.skips.{k - 1}.{node_type}.bias"])
    for rel, agg in zip(relations_into(node_type), aggs):
        conv = f"net.convs.{k - 1}.{rel_key(rel)}"
        pre = pre + F.linear(agg, params[f"{conv}.lin_l.weight"], params[f"{conv}.lin_l.bias"]) \
            + F.linear(h, params[f"{conv}.lin_r.weight"])
    norm = f"net.norms.{k - 1}.{node_type}"
    return F.layer_norm(pre, pre.shape[-1:], params[f"{norm}.weight"], params[f"{norm}.bias"]).relu()


def head(params: Params, h: Tensor) -> Tensor:
    """The log-rate of a place from its layer-K row."""
    return F.linear(h, params[HEAD_NAMES[0]], params[HEAD_NAMES[1]]).squeeze(-1)


def mean_aggregate(graph: Graph, rel: Relation, h_src: Tensor) -> Tensor:
    """Mean of the sources' rows per destination (0 without in-edges), as SAGEConv aggregates."""
    out = h_src.new_zeros(graph.num[rel[2]], h_src.size(-1)).index_add_(0, graph.dst[rel], h_src[graph.src[rel]])
    return out / graph.deg[rel].clamp(min=1).unsqueeze(1).to(out.dtype)


def forward(params: Params, graph: Graph, layers: int) -> tuple[Tensor, list[dict[str, tuple[list[Tensor], Tensor]]]]:
    """Log-rates of every place, and per layer k the inputs (aggregates, own rows) of each needed type's nodes."""
    needed = needed_types(layers)
    h = dict(graph.x)
    inputs: list[dict[str, tuple[list[Tensor], Tensor]]] = [{}]
    for k in range(1, layers + 1):
        layer = {t: ([mean_aggregate(graph, r, h[r[0]]) for r in relations_into(t)], h[t]) for t in needed[k]}
        inputs.append(layer)
        h = {t: node_layer(params, k, t, *layer[t]) for t in needed[k]}
    return head(params, h[TARGET]), inputs


def poisson_loss(f: Tensor, y: Tensor) -> Tensor:
    """Poisson negative log-likelihood of count y at log-rate f, without the log y! term (F.poisson_nll_loss)."""
    return torch.exp(f) - y * f


def _spawn(graph: Graph, node_type: str, ex: Tensor, node: Tensor, c_aggs: list[Tensor], c_h: Tensor,
           into: dict[str, list[tuple[Tensor, Tensor, Tensor]]]) -> None:
    """Pass the cotangents of pairs (example, node) one layer down: each relation's along the node's in-edges,
    divided by its in-degree; the own row's to the node itself."""
    into.setdefault(node_type, []).append((ex, node, c_h))
    for rel, c in zip(relations_into(node_type), c_aggs):
        counts = graph.deg[rel][node]
        rep = torch.repeat_interleave(torch.arange(node.numel()), counts)
        if not rep.numel():
            continue
        first = torch.cumsum(counts, 0) - counts
        edge = graph.ptr[rel][node][rep] + torch.arange(rep.numel()) - first[rep]
        into.setdefault(rel[0], []).append((ex[rep], graph.src[rel][edge], c[rep] / counts[rep].unsqueeze(1)))


def _coalesce(parts: list[tuple[Tensor, Tensor, Tensor]], num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """One pair per (example, node), cotangents summed."""
    ex, node, cot = (torch.cat(p) for p in zip(*parts))
    keys, inverse = torch.unique(ex * num_nodes + node, return_inverse=True)
    summed = cot.new_zeros(keys.numel(), cot.size(1)).index_add_(0, inverse, cot)
    return keys // num_nodes, keys % num_nodes, summed


def per_example_grads(params: Params, graph: Graph, layers: int, y: Tensor, chunk: int = CHUNK
                      ) -> tuple[Params, Tensor]:
    """Each place's gradient of its Poisson loss (log-rate f_p, count y_p) over every parameter, [P, *shape] per
    name, exact; and the log-rates f [P]."""
    f, inputs = forward(params, graph, layers)
    places = graph.num[TARGET]
    out = {n: params[n].new_zeros(places, *params[n].shape) for n in params}
    top = {n: params[n] for n in layer_names(layers, TARGET) + HEAD_NAMES}

    def loss(theta: Params, aggs: list[Tensor], h: Tensor, target: Tensor) -> Tensor:
        return poisson_loss(head(theta, node_layer(theta, layers, TARGET, aggs, h)), target)

    aggs, h = inputs[layers][TARGET]
    g_theta, g_aggs, g_h = vmap(grad(loss, argnums=(0, 1, 2)), in_dims=(None, 0, 0, 0))(top, aggs, h, y)
    out.update(g_theta)
    pending: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {}
    examples = torch.arange(places)
    _spawn(graph, TARGET, examples, examples, g_aggs, g_h, pending)
    for k in range(layers - 1, 0, -1):
        below: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {}
        for node_type, parts in pending.items():
            ex, node, cot = _coalesce(parts, graph.num[node_type])
            _layer_pairs(params, k, node_type, inputs[k][node_type], ex, node, cot, out, graph,
                         below if k > 1 else None, chunk)
        pending = below
    return out, f.detach()


def _layer_pairs(params: Params, k: int, node_type: str, layer_inputs: tuple[list[Tensor], Tensor], ex: Tensor,
                 node: Tensor, cot: Tensor, out: Params, graph: Graph,
                 below: dict[str, list[tuple[Tensor, Tensor, Tensor]]] | None, chunk: int) -> None:
    """Add each pair's vector-Jacobian product of node `node`'s layer-k function (cotangent `cot`) to example `ex`'s
    gradient of the layer-k parameters, and pass its input cotangents down (unless k = 1: the inputs are data)."""
    theta = {n: params[n] for n in layer_names(k, node_type)}
    aggs, h = layer_inputs

    def dot(th: Params, a: list[Tensor], x: Tensor, c: Tensor) -> Tensor:
        return (node_layer(th, k, node_type, a, x) * c).sum()

    argnums = (0, 1, 2) if below is not None else 0
    vjp: Callable = vmap(grad(dot, argnums=argnums), in_dims=(None, 0, 0, 0))
    for lo in range(0, ex.numel(), chunk):  # chunks of pairs, each vectorised
        sl = slice(lo, lo + chunk)
        rows = node[sl]
        result = vjp(theta, [a[rows] for a in aggs], h[rows], cot[sl])
        g_theta = result[0] if below is not None else result
        for n, g in g_theta.items():
            out[n].index_add_(0, ex[sl], g)
        if below is not None:
            _spawn(graph, node_type, ex[sl], rows, result[1], result[2], below)


__all__ = ["MESSAGE_RELATIONS", "Graph", "forward", "init_params", "message_graph", "message_snapshot",
           "needed_types", "param_names", "per_example_grads", "poisson_loss"]
