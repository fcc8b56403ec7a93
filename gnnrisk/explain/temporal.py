"""Explanations over time: which (tie, period) pairs drove a forecast, scored against planted transmissions.

What is explained: the last origin's forecast (origin t = `eval.origins`' latest, horizon h = the first
of `eval.horizons`) of a sample of nodes, through the model's support for the node's planted outcome
class c at the target period t + h: the log-odds `logit_c - logsumexp(other logits)` (saliency,
integrated gradients) or the cross-entropy towards c (GNNExplainer's prediction loss).

Candidates (the reach): for node v the scored units are (tie, period s) pairs, s = 0..t, of the
graphs the forecaster read (`Forecast.graphs`: the released ones under a privacy mechanism). They are
found by a time-respecting walk backwards from v, one hop per period: at period t the ties at v; the
ties' other endpoints join the reach for the periods before, and so on, so a tie of period s is a
candidate when it lies within min(K, t - s + 1) hops of v along ties of periods s..t
(K = `explain.num_hops`, default 2: v's infector and the infector's infector). The recurrent graph
models read further (the GRU's reset gate makes two hops per period), so the cap bounds the table,
not the model.

Scores come from a mask value w per directed edge of each period's graph that scales the edge's
message after the graph's symmetric normalisation (PyG's explain masks, as the static stage; see
`CopiesGraph` for why not the models' gcn_norm-weighted path), varied on the candidate edges only
(every other tie keeps w = 1):
- saliency: |d f / d w| at w = 1;
- integrated_gradients: the path integral of d f / d w from w = 0 to w = 1 on every candidate edge
  together, by the n_steps-point Gauss-Legendre rule (Captum's default, as the static stage);
  importance = |attribution|; the attributions add up to f(1) - f(0) (completeness, tested);
- gnnexplainer: a soft mask sigmoid(m) on the candidate edges optimised for `epochs` Adam steps
  (`lr`) on PyG's GNNExplainer objective with PyG's default coefficients
  (`GNNExplainer.default_coeffs`: cross-entropy towards c + 0.005 * sum(mask) + 1.0 * mean entropy,
  over the edges whose first-step gradient is non-zero; those without get 0, as in PyG);
- random: uniform scores from a seeded generator (the chance baseline).
The two directions of a tie share its score: the mean over them (as `explain.undirected`).

Ground truth (`explain.ground_truth=paths`): the planted transmission chain that ends at v's outcome
at the target period. v's outcome at t + h started with its current spell at period q (the latest q
with the outcome at q..t+h); each planted transmission w -> v at period q marks the pair
({w, v}, q - 1) (the model reads the tie in period q - 1 together with w's record of q - 1 to
anticipate the transmission; a period-0 transmission, contagion within period 0, marks ({w, v}, 0)),
and the chain goes on from w's spell that contains period q - 1, back to spells that began without a
transmission. Pairs after the origin are dropped. A node that is not positive at t + h, or whose
spell began without a transmission, has no positive pair and is skipped by the AUROC (as the static
stage skips nodes without ground truth). `explain.ground_truth=all`: every planted transmission pair
of the window, whoever it reached.

Batched forwards: a `CopiesGraph` holds S copies of the population (the model sees S * N nodes), each
copy with its own weights: IG evaluates its n_steps points as copies, saliency and GNNExplainer
explain several nodes at once (Adam is elementwise and the copies' losses add up, so each node's mask
follows exactly its own optimisation).
"""

from __future__ import annotations

import copy
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.explain.algorithm import GNNExplainer
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.explain.evaluation import GROUND_TRUTHS, summarise
from gnnrisk.explain.nodes import SPLITS, validate_node_spec
from gnnrisk.models.full_batch import SparseOperator, csr
from gnnrisk.models.recurrent import RECURRENT_GRAPH_MODELS, PeriodGraph
from gnnrisk.train.forecast import model_inputs

log = logging.getLogger(__name__)

TEMPORAL_ALGORITHMS = ("saliency", "integrated_gradients", "gnnexplainer", "random")
DEFAULT_HOPS = 2          # explain.num_hops=null over periods
COPY_BUDGET = 25_000      # node copies (S * N) per batched forward: bounds the memory of the autograd graph
TABLE_FILE = "explanations.csv"


# ---------------------------------------------------------------------------------------------- config

def validate_temporal(cfg: DictConfig, data: Data, model_name: str) -> None:
    """Refuse, before training, an `explain` config that has no meaning over periods (one-line ConfigError)."""
    check_choice("explain.name", cfg.name, TEMPORAL_ALGORITHMS)
    if model_name not in RECURRENT_GRAPH_MODELS:  # named like the static check_architecture: the explainer's field
        raise ConfigError("explain.name", cfg.name, f"over periods it weighs every period's ties inside a recurrent "
                          f"graph model, which model={model_name} is not: use model="
                          + " or model=".join(RECURRENT_GRAPH_MODELS))
    check_choice("explain.ground_truth", cfg.get("ground_truth", "paths"), GROUND_TRUTHS)
    if cfg.get("num_hops") is not None:
        check_number("explain.num_hops", cfg.num_hops, low=1, integer=True)
    check_number("explain.top_k", cfg.get("top_k", 10), low=1, integer=True)
    if cfg.get("subgraph", True) is not True:
        raise ConfigError("explain.subgraph", cfg.subgraph, "over periods the model reads every period's whole "
                          "graph and the (tie, period) pairs within explain.num_hops are scored: expected true")
    if cfg.get("undirected", True) is not True:
        raise ConfigError("explain.undirected", cfg.undirected, "over periods a (tie, period) pair is scored, "
                          "both directions together: expected true")
    for key in ("epochs", "n_steps"):
        if key in cfg:
            check_number(f"explain.{key}", cfg[key], low=1, integer=True)
    if "lr" in cfg:
        check_number("explain.lr", cfg.lr, low=0.0, low_open=True)
    truth = data.y_true if getattr(data, "y_true", None) is not None else data.y
    validate_node_spec(cfg, int(data.num_nodes), int(truth.max()) + 1)


def num_hops(cfg: DictConfig) -> int:
    """K: the cap on the hops from the explained node (null = DEFAULT_HOPS)."""
    return int(cfg.get("num_hops") or DEFAULT_HOPS)


# ---------------------------------------------------------------------------------------------- reach

@dataclass
class Reach:
    """One node's candidate (tie, period) pairs and, per period, the directed edges that carry them.

    `edges[s]` are ids into `graphs[s].edge_index` (periods 0..origin), `pair_of_edge[s]` the pair
    (row of `u`, `v`, `period`) each of them belongs to.
    """

    node: int
    u: Tensor
    v: Tensor
    period: Tensor
    edges: list[Tensor]
    pair_of_edge: list[Tensor]

    @property
    def num_pairs(self) -> int:
        """Number of candidate (tie, period) pairs."""
        return int(self.period.numel())


def node_reach(graphs: list[PeriodGraph], node: int, origin: int, hops: int, num_nodes: int) -> Reach:
    """The (tie, period s) pairs within min(hops, origin - s + 1) hops of `node` along ties of periods s..origin."""
    device = graphs[0].edge_index.device
    far = hops + 1
    dist = torch.full((num_nodes,), far, dtype=torch.long, device=device)
    dist[node] = 0
    edges: list[Tensor] = [torch.empty(0, dtype=torch.long, device=device)] * (origin + 1)
    pair_of_edge = list(edges)
    us, vs, ps = [], [], []
    offset = 0
    for s in range(origin, -1, -1):  # periods, backwards in time
        src, dst = graphs[s].edge_index
        ids = (torch.minimum(dist[src], dist[dst]) <= hops - 1).nonzero().flatten()
        lo, hi = torch.minimum(src[ids], dst[ids]), torch.maximum(src[ids], dst[ids])
        keys, inverse = torch.unique(lo * num_nodes + hi, return_inverse=True)
        edges[s], pair_of_edge[s] = ids, inverse + offset
        us.append(keys // num_nodes), vs.append(keys % num_nodes), ps.append(torch.full_like(keys, s))
        offset += keys.numel()
        dist = dist.scatter_reduce(0, src[ids], dist[dst[ids]] + 1, reduce="amin")  # one hop per period
    return Reach(node=node, u=torch.cat(us), v=torch.cat(vs), period=torch.cat(ps), edges=edges,
                 pair_of_edge=pair_of_edge)


# ---------------------------------------------------------------------------------------------- truth

class PlantedChains:
    """The planted transmissions indexed by (target, period), with the true outcome per node and period."""

    def __init__(self, data: Data):
        self.y = data.y_true.cpu().numpy().astype(bool)
        tr = data.transmissions.cpu().numpy()
        self.into: dict[tuple[int, int], list[int]] = defaultdict(list)
        for src, dst, period in tr.T.tolist():  # planted transmissions, a few per node
            self.into[(dst, period)].append(src)
        self.rows = tr

    def spell_start(self, node: int, period: int) -> int:
        """The first period of the outcome spell of `node` that contains `period`."""
        q = period
        while q > 0 and self.y[node, q - 1]:
            q -= 1
        return q

    def chain(self, node: int, target: int, origin: int) -> set[tuple[int, int, int]]:
        """(u, v, s) with u < v: the chain's pairs into `node`'s outcome at `target`, periods s <= origin."""
        out: set[tuple[int, int, int]] = set()
        seen: set[tuple[int, int]] = set()
        stack = [(node, target)]
        while stack:
            w, p = stack.pop()
            if (w, p) in seen or not self.y[w, p]:
                continue
            seen.add((w, p))
            q = self.spell_start(w, p)
            for src in self.into.get((w, q), ()):
                s = max(q - 1, 0)
                if s <= origin:
                    out.add((min(src, w), max(src, w), s))
                stack.append((src, max(q - 1, 0)))
        return out

    def every_pair(self, origin: int) -> set[tuple[int, int, int]]:
        """Every planted transmission pair of the window (`explain.ground_truth=all`)."""
        src, dst, period = self.rows
        s = np.maximum(period - 1, 0)
        keep = s <= origin
        return set(zip(np.minimum(src, dst)[keep].tolist(), np.maximum(src, dst)[keep].tolist(), s[keep].tolist()))


def pair_truth(reach: Reach, positives: set[tuple[int, int, int]]) -> Tensor:
    """Per candidate pair of `reach`: is it in `positives`."""
    rows = zip(reach.u.tolist(), reach.v.tolist(), reach.period.tolist())
    return torch.tensor([row in positives for row in rows], dtype=torch.bool)


# ---------------------------------------------------------------------------------------------- model

class CopiesGraph:
    """One period's graph for S copies of the population, each with its own mask on its own edges.

    Duck-types `PeriodGraph.propagate` for S * N nodes (copy i = nodes i*N .. i*N + N - 1). A mask
    value w_e scales the message of directed edge e after the symmetric normalisation of the period's
    graph (PyG's explain masks, as the static stage): copy i computes `A_hat h` with A_hat[dst, src]
    = w_e / sqrt(deg(src) deg(dst)) on its masked edges and the plain value elsewhere; w = 1 is the
    plain graph, w = 0 removes the message. (The models' own weighted path, gcn_norm of the weighted
    graph, renormalises the degrees: scaling every tie of a node by w > 0 leaves its normalised
    weights nearly unchanged and only w = 0 removes them, a jump at 0 that breaks integrated
    gradients' completeness.) Computed as the plain operator of all copies at once (one block-diagonal
    CSR product) plus, per copy, (w - 1) times the messages of its masked edges only.
    """

    def __init__(self, graph: PeriodGraph, masked: list[Tensor]):
        n, copies = graph.num_nodes, len(masked)
        self.n, self.copies = n, copies
        ei = graph.edge_index
        src, dst = ei
        device = src.device
        normed, value = gcn_norm(ei, None, n, add_self_loops=False)
        one = csr(normed[1], normed[0], value, n)  # rows = targets
        one_t = csr(normed[0], normed[1], value, n)
        self.op, self.op_t = block_diagonal(one, copies), block_diagonal(one_t, copies)
        deg = torch.zeros(n, device=device).index_add_(0, dst, torch.ones(dst.numel(), device=device))
        dis = torch.where(deg > 0, deg.clamp(min=1).pow(-0.5), torch.zeros_like(deg))
        sizes = torch.tensor([ids.numel() for ids in masked], device=device, dtype=torch.long)
        shift = torch.repeat_interleave(torch.arange(copies, device=device) * n, sizes)
        ids = torch.cat(list(masked)) if masked else torch.empty(0, dtype=torch.long, device=device)
        self.src_f, self.dst_f = src[ids] + shift, dst[ids] + shift
        self.norm = dis[src[ids]] * dis[dst[ids]]
        self.change: Tensor | None = None

    def set_weights(self, weights: Tensor) -> None:
        """The copies' mask values on their masked edges, concatenated in copy order (differentiable)."""
        self.change = (weights - 1.0) * self.norm

    def propagate(self, h: Tensor) -> Tensor:
        """Per copy, `A_hat h` with that copy's mask."""
        out = SparseOperator.apply(self.op, self.op_t, h)
        if self.change is None or not self.change.numel():
            return out
        return out.index_add(0, self.dst_f, self.change.unsqueeze(-1) * h[self.src_f])


def block_diagonal(matrix: Tensor, copies: int) -> Tensor:
    """The CSR matrix with `copies` copies of the N x N CSR `matrix` on its diagonal."""
    n, nnz = matrix.size(0), matrix.values().numel()
    crow, col = matrix.crow_indices().long(), matrix.col_indices().long()
    if copies == 1:
        return matrix
    index = torch.arange(copies, device=crow.device)
    crows = torch.cat([(crow[:-1].unsqueeze(0) + (index * nnz).unsqueeze(1)).flatten(),
                       torch.tensor([copies * nnz], device=crow.device)])
    cols = (col.unsqueeze(0) + (index * n).unsqueeze(1)).flatten()
    small = copies * max(n, nnz) < 2**31
    dtype = torch.int32 if small else torch.int64
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crows.to(dtype), cols.to(dtype), matrix.values().repeat(copies),
                                       (copies * n, copies * n), check_invariants=False)


class Explained:
    """The last origin's forecaster, ready for weighted forwards on copies of the population."""

    def __init__(self, model: nn.Module, xs: Tensor, graphs: list[PeriodGraph], horizon_index: int,
                 num_horizons: int):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.xs, self.graphs = xs, graphs
        self.k, self.num_h = horizon_index, num_horizons
        self.n = graphs[0].num_nodes
        self.origin = len(graphs) - 1

    def copies(self, weighted: list[list[Tensor]]) -> list[CopiesGraph]:
        """Per period, the graph of len(weighted) copies; copy i weighs its edges `weighted[i][s]` in period s."""
        return [CopiesGraph(graph, [w[s] for w in weighted]) for s, graph in enumerate(self.graphs)]

    def run(self, graphs: list[CopiesGraph], nodes: list[int], weights: list[Tensor]) -> Tensor:
        """Logits [S, C] of copy i's node `nodes[i]` with the copies' `weights[s]` in period s."""
        for g, w in zip(graphs, weights):
            g.set_weights(w)
        s = len(nodes)
        out = self.model(self.xs.repeat(1, s, 1), graphs)[self.origin]
        out = out.view(s, self.n, self.num_h, -1)[:, :, self.k]
        return out[torch.arange(s, device=out.device), torch.tensor(nodes, device=out.device)]

    def logits(self, nodes: list[int], weighted: list[list[Tensor]], weights: list[Tensor]) -> Tensor:
        """Logits [S, C] of copy i's node `nodes[i]` with copy i's weights on its `weighted[i][s]` edges."""
        return self.run(self.copies(weighted), nodes, weights)

    def plain_logits(self) -> Tensor:
        """Logits [N, C] of every node on the unweighted graphs (the forecast itself)."""
        with torch.no_grad():
            out = self.model(self.xs, self.graphs)[self.origin]
        return out.view(self.n, self.num_h, -1)[:, self.k]


def log_odds(logits: Tensor, cls: Tensor) -> Tensor:
    """Per row, logit of class `cls` minus the log-sum-exp of the other classes."""
    own = logits.gather(1, cls.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, cls.view(-1, 1), float("-inf"))
    return own - others.logsumexp(1)


def chunks(items: list, size: int) -> list[list]:
    """`items` in consecutive lists of at most `size`."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def edge_weights(reaches: list[Reach], fill: list[Tensor]) -> list[Tensor]:
    """Per period, the copies' weights concatenated: copy i's candidate edges take `fill[i]` (a pair value each)."""
    periods = len(reaches[0].edges)
    return [torch.cat([f[r.pair_of_edge[s]] for r, f in zip(reaches, fill)]) for s in range(periods)]


def edge_to_pairs(reach: Reach, values: list[Tensor]) -> Tensor:
    """Per candidate pair, the mean of the per-directed-edge `values` (one tensor per period) over its edges."""
    total = torch.zeros(reach.num_pairs, dtype=torch.float64)
    count = torch.zeros(reach.num_pairs, dtype=torch.float64)
    for s, vals in enumerate(values):  # periods
        index = reach.pair_of_edge[s].cpu()
        total.index_add_(0, index, vals.detach().double().cpu())
        count.index_add_(0, index, torch.ones(index.numel(), dtype=torch.float64))
    return total / count.clamp(min=1)


def split_grad(grad: list[Tensor], reaches: list[Reach]) -> list[list[Tensor]]:
    """Per copy, per period: its slice of the concatenated per-period gradients."""
    out: list[list[Tensor]] = [[] for _ in reaches]
    for s, g in enumerate(grad):  # periods
        sizes = [r.edges[s].numel() for r in reaches]
        for i, part in enumerate(torch.split(g, sizes)):
            out[i].append(part)
    return out


# ---------------------------------------------------------------------------------------------- explainers

def saliency(expl: Explained, reaches: list[Reach], cls: list[int], batch: int) -> list[Tensor]:
    """Per node, per directed candidate edge and period: |d f / d w| at w = 1 (f = log-odds of its class)."""
    out: list[list[Tensor]] = []
    for part in chunks(list(range(len(reaches))), batch):
        rs = [reaches[i] for i in part]
        weights = [torch.ones(sum(r.edges[s].numel() for r in rs), device=expl.xs.device, requires_grad=True)
                   for s in range(expl.origin + 1)]
        f = log_odds(expl.logits([r.node for r in rs], [r.edges for r in rs], weights),
                     torch.tensor([cls[i] for i in part], device=expl.xs.device))
        grads = torch.autograd.grad(f.sum(), weights, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
        out.extend([[g.abs() for g in node] for node in split_grad(grads, rs)])
    return out


def gauss_legendre(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in (0, 1) and weights (summing to 1) of the n-point Gauss-Legendre rule (Captum's default)."""
    x, w = np.polynomial.legendre.leggauss(n_steps)
    return (x + 1) / 2, w / 2


def integrated_gradients(expl: Explained, reaches: list[Reach], cls: list[int], n_steps: int, batch: int
                         ) -> list[list[Tensor]]:
    """Per node, signed IG attributions per directed candidate edge and period, from all-zero to all-one weights.

    Every (node, Gauss-Legendre point) is one copy; copies are evaluated `batch` at a time.
    """
    alphas, step_w = gauss_legendre(n_steps)
    device = expl.xs.device
    total = [[torch.zeros(e.numel(), device=device) for e in r.edges] for r in reaches]
    jobs = [(i, k) for i in range(len(reaches)) for k in range(n_steps)]
    for part in chunks(jobs, batch):
        rs = [reaches[i] for i, _ in part]
        weights = [torch.cat([torch.full((r.edges[s].numel(),), float(alphas[k]), device=device)
                              for r, (_, k) in zip(rs, part)]).requires_grad_(True) for s in range(expl.origin + 1)]
        f = log_odds(expl.logits([r.node for r in rs], [r.edges for r in rs], weights),
                     torch.tensor([cls[i] for i, _ in part], device=device))
        scale = torch.tensor([step_w[k] for _, k in part], dtype=f.dtype, device=device)
        grads = torch.autograd.grad((f * scale).sum(), weights, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
        for (i, _), node in zip(part, split_grad(grads, rs)):
            for s, g in enumerate(node):  # periods
                total[i][s] += g
    return total


def model_value(expl: Explained, reach: Reach, cls: int, weight: float) -> float:
    """f (log-odds of `cls`) with every candidate edge of `reach` at `weight` (IG's end points)."""
    with torch.no_grad():
        w = [torch.full((e.numel(),), weight, device=expl.xs.device) for e in reach.edges]
        return float(log_odds(expl.logits([reach.node], [reach.edges], w), torch.tensor([cls], device=expl.xs.device)))


def gnnexplainer(expl: Explained, reaches: list[Reach], cls: list[int], epochs: int, lr: float, batch: int
                 ) -> list[list[Tensor]]:
    """Per node: sigmoid of its GNNExplainer mask per directed candidate edge and period (0 off the hard mask).

    PyG's objective and initialisation (std = gain(relu) * sqrt(2 / (2 N)), N = nodes of the graph the
    model reads), with its default coefficients; the regularisers act from the second step on, over
    the edges whose first-step gradient is non-zero, as in PyG's `GNNExplainer._train`.
    """
    coeffs = GNNExplainer.default_coeffs
    device = expl.xs.device
    std = torch.nn.init.calculate_gain("relu") * (2.0 / (2 * expl.n)) ** 0.5
    out: list[list[Tensor]] = []
    for part in chunks(list(range(len(reaches))), batch):
        rs = [reaches[i] for i in part]
        sizes = [sum(e.numel() for e in r.edges) for r in rs]
        params = torch.nn.Parameter(torch.randn(sum(sizes), device=device) * std)
        owner = torch.repeat_interleave(torch.arange(len(rs), device=device), torch.tensor(sizes, device=device))
        target = torch.tensor([cls[i] for i in part], device=device)
        optimizer = torch.optim.Adam([params], lr=lr)
        graphs = expl.copies([r.edges for r in rs])
        hard: Tensor | None = None
        for step in range(epochs):  # optimisation steps
            optimizer.zero_grad()
            mask = params.sigmoid()
            loss = F.cross_entropy(expl.run(graphs, [r.node for r in rs], by_period(mask, rs, sizes)), target,
                                   reduction="sum")
            if hard is not None:
                m = mask[hard]
                ent = -m * torch.log(m + coeffs["EPS"]) - (1 - m) * torch.log(1 - m + coeffs["EPS"])
                count = torch.bincount(owner[hard], minlength=len(rs)).clamp(min=1)
                loss = loss + coeffs["edge_size"] * m.sum() + coeffs["edge_ent"] * (
                    torch.zeros(len(rs), device=device).index_add(0, owner[hard], ent) / count).sum()
            loss.backward()
            optimizer.step()
            if step == 0:
                hard = params.grad != 0
        final = params.detach().sigmoid() * (hard if hard is not None else 1)
        for i, piece in enumerate(torch.split(final, sizes)):
            out.append(list(torch.split(piece, [e.numel() for e in rs[i].edges])))
    return out


def by_period(flat: Tensor, reaches: list[Reach], sizes: list[int]) -> list[Tensor]:
    """Reorder weights laid out per copy (copy i: its periods in order) into per-period concatenations."""
    per_copy_parts = [list(torch.split(piece, [e.numel() for e in r.edges]))
                      for piece, r in zip(torch.split(flat, sizes), reaches)]
    return [torch.cat([parts[s] for parts in per_copy_parts]) for s in range(len(reaches[0].edges))]


# ---------------------------------------------------------------------------------------------- fidelity

def fidelities(expl: Explained, reaches: list[Reach], scores: list[Tensor], cls: list[int], tops: list[Tensor],
               full: Tensor, batch: int) -> list[dict[str, float]]:
    """Per node, the static stage's fidelity forms on its candidate pairs (every other tie keeps weight 1).

    Label form (PyG): does the predicted class change under the complement of the soft mask (fid+) or
    the soft mask itself (fid-), mask = scores / max. Probability form (DIG): drop in the probability
    of the explained class when the top-k pairs are removed (fid+) or only they are kept (fid-).
    `full`: the nodes' unmasked logits. Four copies per node, `batch` copies per forward.
    """
    device = expl.xs.device
    jobs = []
    for i, (score, top) in enumerate(zip(scores, tops)):  # nodes
        peak = float(score.max()) if score.numel() else 0.0
        soft = (score / peak if peak > 0 else score).float()
        jobs += [(i, fill.to(device)) for fill in (1.0 - soft, soft, 1.0 - top.float(), top.float())]
    logits = []
    with torch.no_grad():
        for part in chunks(jobs, batch):
            rs = [reaches[i] for i, _ in part]
            logits.append(expl.logits([r.node for r in rs], [r.edges for r in rs],
                                      edge_weights(rs, [fill for _, fill in part])))
    out = torch.cat(logits).view(len(reaches), 4, -1)
    rows = []
    for i, r in enumerate(reaches):  # nodes
        pred, prob = out[i].argmax(-1), out[i].softmax(-1)[:, cls[i]]
        full_pred, full_prob = int(full[i].argmax()), float(full[i].softmax(-1)[cls[i]])
        rows.append({"fidelity_plus_label": float(pred[0] != full_pred),
                     "fidelity_minus_label": float(pred[1] != full_pred),
                     "fidelity_plus_prob": full_prob - float(prob[2]), "fidelity_minus_prob": full_prob - float(prob[3]),
                     "sparsity": 1.0 - float(tops[i].sum()) / max(r.num_pairs, 1)})
    return rows


# ---------------------------------------------------------------------------------------------- nodes

def select_temporal_nodes(cfg: DictConfig, data: Data, graphs: list[PeriodGraph], outcome: Tensor, seed: int
                          ) -> list[int]:
    """The nodes to explain: a list as given, or a seeded sample of `explain.split` nodes whose planted outcome
    at the target period is in `explain.classes` (binary default: positive), with a tie in the window."""
    n = int(data.num_nodes)
    tied = torch.zeros(n, dtype=torch.bool, device=outcome.device)
    for g in graphs:
        tied[g.edge_index[1]] = True
    spec = cfg.get("nodes", "sample")
    if isinstance(spec, (list, tuple, ListConfig)):
        ids = [int(check_number(f"explain.nodes[{i}]", v, low=0, high=n - 1, integer=True))
               for i, v in enumerate(spec)]
        lonely = [v for v in ids if not bool(tied[v])]
        if lonely:
            raise ConfigError("explain.nodes", list(spec), f"nodes {lonely} have no tie in any period the forecast "
                              "reads, so there is no link to explain; drop them or use nodes=sample")
        return sorted(ids)
    count = int(cfg.num_nodes if spec == "sample" else spec)
    split = check_choice("explain.split", cfg.get("split", "test"), SPLITS)
    mask = torch.ones(n, dtype=torch.bool, device=outcome.device) if split == "all" else \
        getattr(data, f"{split}_mask").clone()
    classes = cfg.get("classes")
    num_classes = int(outcome.max()) + 1
    if classes is None:
        classes = [1] if num_classes <= 2 else list(range(num_classes))
    mask &= torch.isin(outcome, torch.tensor([int(c) for c in classes], device=outcome.device)) & tied
    pool = mask.nonzero().flatten().cpu()
    if pool.numel() == 0:
        raise ConfigError("explain.nodes", spec, f"no node to explain: no {split} node with a tie has its planted "
                          "outcome at the target period in explain.classes; try explain.split=all, other "
                          "explain.classes, or an explicit list of node ids")
    order = torch.randperm(pool.numel(), generator=torch.Generator().manual_seed(seed))
    return sorted(pool[order[:count]].tolist())


# ---------------------------------------------------------------------------------------------- stage

def explain_forecast(cfg: DictConfig, data: Data, forecast: Any, seed: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                     dict[str, Any]]:
    """Explain the last origin's first-horizon forecast: (pair table, per-node fidelities, settings)."""
    name = cfg.name
    origin, horizon = forecast.window.origins[-1], forecast.window.horizons[0]
    target = origin + horizon
    graphs = forecast.graphs[:origin + 1]
    n = int(data.num_nodes)
    truth_y = data.y_true if getattr(data, "y_true", None) is not None else data.y
    outcome = truth_y[:, target]
    hops = num_hops(cfg)
    nodes = select_temporal_nodes(cfg, data, graphs, outcome, seed)
    expl = Explained(forecast.model, model_inputs(data)[:origin + 1], graphs, 0, len(forecast.window.horizons))
    cls = [int(outcome[v]) for v in nodes]
    has_truth = getattr(data, "transmissions", None) is not None and getattr(data, "y_true", None) is not None
    chains = PlantedChains(data) if has_truth else None
    everything = chains.every_pair(origin) if has_truth and cfg.get("ground_truth", "paths") == "all" else None
    start = time.perf_counter()
    reaches = [node_reach(graphs, v, origin, hops, n) for v in nodes]
    reach_seconds = time.perf_counter() - start
    batch = max(1, COPY_BUDGET // n)
    torch.manual_seed(seed)
    start = time.perf_counter()
    if name == "saliency":
        per_pair = [edge_to_pairs(r, e) for r, e in zip(reaches, saliency(expl, reaches, cls, batch))]
    elif name == "integrated_gradients":
        per_pair = [edge_to_pairs(r, [a.abs() for a in attr]) for r, attr in
                    zip(reaches, integrated_gradients(expl, reaches, cls, int(cfg.n_steps), batch))]
    elif name == "gnnexplainer":
        per_pair = [edge_to_pairs(r, e) for r, e in
                    zip(reaches, gnnexplainer(expl, reaches, cls, int(cfg.epochs), float(cfg.lr), batch))]
    else:  # random: the chance baseline
        generator = torch.Generator().manual_seed(seed)
        per_pair = [torch.rand(r.num_pairs, generator=generator, dtype=torch.float64) for r in reaches]
    seconds = (time.perf_counter() - start + reach_seconds) / max(len(nodes), 1)
    top_k = int(cfg.get("top_k", 10))
    full = expl.plain_logits()[torch.tensor(nodes, device=expl.xs.device)]
    frames, tops = [], []
    covered = planted_total = 0
    for r, scores in zip(reaches, per_pair):
        order = torch.sort(scores, descending=True, stable=True).indices
        top = torch.zeros(r.num_pairs, dtype=torch.bool)
        top[order[:top_k]] = True
        tops.append(top)
        if has_truth:
            positives = everything if everything is not None else chains.chain(r.node, target, origin)
            truth = pair_truth(r, positives)
            if everything is None:
                planted_total += len(positives)
                covered += int(truth.sum())
        else:
            truth = torch.zeros(r.num_pairs, dtype=torch.bool)
        frames.append(pd.DataFrame({"node": r.node, "u": r.u.cpu().numpy(), "v": r.v.cpu().numpy(),
                                    "period": r.period.cpu().numpy(), "score": scores.numpy(),
                                    "planted": truth.numpy(), "in_top_k": top.numpy()}))
    fids = fidelities(expl, reaches, per_pair, cls, tops, full, batch)
    table = pd.concat(frames, ignore_index=True)
    info = {"nodes": len(nodes), "origin": origin, "horizon": horizon, "target": target, "hops": hops, "seconds": seconds,
            "has_truth": has_truth, "coverage": covered / planted_total if planted_total else None,
            "num_pairs": len(table), "top_k": top_k}
    return table, pd.DataFrame(fids), info


def bootstrap_auroc(table: pd.DataFrame, seed: int, draws: int = 1000) -> tuple[float | None, float | None]:
    """95% percentile interval of the pooled AUROC, resampling the explained nodes with ground truth.

    A resample that takes node i c_i times has pooled AUROC c'Uc / ((c'P)(c'N)), with U[i, j] the
    (positive of i, negative of j) pairs ranked right (ties count one half) and P, N the counts of
    positives and negatives per node, so every draw costs a G x G product (G = nodes with truth).
    """
    frame = table[table.groupby("node")["causal"].transform("any")]
    groups = [(g["score"].to_numpy(float)[g["causal"].to_numpy(bool)],
               np.sort(g["score"].to_numpy(float)[~g["causal"].to_numpy(bool)])) for _, g in frame.groupby("node")]
    if len(groups) < 2:
        return None, None
    pos = np.array([p.size for p, _ in groups], dtype=float)
    neg = np.array([q.size for _, q in groups], dtype=float)
    pairs = np.array([[(np.searchsorted(q, p, "left") + np.searchsorted(q, p, "right")).sum() / 2 for _, q in groups]
                      for p, _ in groups])
    counts = np.stack([np.bincount(row, minlength=len(groups)) for row in
                       np.random.default_rng(seed).integers(0, len(groups), (draws, len(groups)))]).astype(float)
    denom = (counts @ pos) * (counts @ neg)
    stats = np.einsum("di,ij,dj->d", counts, pairs, counts)[denom > 0] / denom[denom > 0]
    if not stats.size:
        return None, None
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def run_temporal(cfg: DictConfig, data: Data, forecast: Any, run_dir: Path, seed: int) -> dict[str, Any]:
    """The explain stage over periods: explanations.csv in `run_dir` and the explain_* metrics."""
    table, fids, info = explain_forecast(cfg, data, forecast, seed)
    log.info("explain %s over periods: %d nodes, %d (tie, period) pairs, %.2f s per node", cfg.name,
             info["nodes"], len(table), info["seconds"])
    scored = table.rename(columns={"planted": "causal", "in_top_k": "top"})[["node", "score", "top", "causal"]]
    metrics: dict[str, Any] = {
        "explain_algorithm": cfg.name, "explain_num_nodes": info["nodes"],
        "explain_num_hops": info["hops"], "explain_top_k": info["top_k"], "explain_subgraph": True,
        "explain_unit": "tie_period", "explain_seconds_per_node": info["seconds"], "explain_fit_seconds": 0.0,
        "explain_origin": info["origin"], "explain_horizon": info["horizon"],
        "explain_target_period": info["target"], "explain_num_pairs": info["num_pairs"],
    }
    metrics.update(summarise(scored, fids, info["has_truth"]))
    lo, hi = bootstrap_auroc(scored, seed) if info["has_truth"] else (None, None)
    metrics["explain_auroc_ci_lo"], metrics["explain_auroc_ci_hi"] = lo, hi
    metrics["explain_truth_coverage"] = info["coverage"]
    metrics["explain_ground_truth"] = cfg.get("ground_truth", "paths") if info["has_truth"] else None
    table.to_csv(Path(run_dir) / TABLE_FILE, index=False)
    return metrics
