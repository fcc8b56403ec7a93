"""Edge-level DP by perturbing the adjacency before training: EdgeRand and LapGraph.

Both mechanisms come from LinkTeller (Wu et al., IEEE S&P 2022). Features and labels are
public; neighbouring graphs differ in one undirected edge, i.e. in one upper-triangle cell of
the adjacency. The released (perturbed) graph is the only graph the model ever touches, in
training and at inference, so everything computed from it inherits the mechanism's epsilon by
post-processing.

The published code builds a dense N x N matrix. Here the adjacency is handled as a sorted
array of upper-triangle cell indices (int64 linear indices) and the huge set of non-edge
cells is never materialised: how many of them end up in the output is drawn from its exact
binomial law, and which ones from the uniform law over non-edge cells.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.optimize import brentq
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.data.rewire import with_edges
from gnnrisk.errors import ConfigError, check_number
from gnnrisk.data.temporal import snapshot
from gnnrisk.models import GRAPH_MODELS, build_model, is_plugin_model
from gnnrisk.models.recurrent import RECURRENT_GRAPH_MODELS
from gnnrisk.privacy.base import Mechanism, TrainedModel
from gnnrisk.privacy.continual import continual_release
from gnnrisk.train.loop import fit

SUPPORTED_MODELS = (*GRAPH_MODELS, *RECURRENT_GRAPH_MODELS)
LAPGRAPH_COUNT_SHARE = 0.01  # share of epsilon LapGraph spends on the noisy edge count (as published)


# ----------------------------------------------------------------------------------------------
# Upper-triangle cells: cell (i, j), i < j, has linear index offset(i) + (j - i - 1) where
# offset(i) = i*n - i*(i+1)/2 counts the cells of the rows above i. Sorting cells sorts (i, j)
# lexicographically.

def num_cells(num_nodes: int) -> int:
    """Number of upper-triangle cells (unordered node pairs) of an n-node graph."""
    return num_nodes * (num_nodes - 1) // 2


def row_offsets(num_nodes: int) -> np.ndarray:
    """Linear index of the first cell of each row i: i*n - i*(i+1)/2, for i in [0, n)."""
    i = np.arange(num_nodes, dtype=np.int64)
    return i * num_nodes - ((i * (i + 1)) >> 1)


def encode_cells(u: np.ndarray, v: np.ndarray, num_nodes: int) -> np.ndarray:
    """Linear upper-triangle index of the pairs (u, v) with u < v."""
    u = u.astype(np.int64, copy=False)
    return row_offsets(num_nodes)[u] + v.astype(np.int64, copy=False) - u - 1


def decode_cells(cells: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of linear upper-triangle indices (inverse of `encode_cells`).

    The row is the last row offset at or below the cell: exact integer arithmetic. For sorted
    cells (the common case) the row boundaries are searched in the cells instead, which costs
    n binary searches rather than one per cell.
    """
    k = cells.astype(np.int64, copy=False)
    offsets = row_offsets(num_nodes)
    if k.size > 1 and bool(np.all(k[1:] >= k[:-1])):
        starts = np.searchsorted(k, offsets, side="left")
        i = np.repeat(np.arange(num_nodes, dtype=np.int64), np.diff(np.append(starts, k.size)))
    else:
        i = np.searchsorted(offsets, k, side="right") - 1
    j = offsets[i]
    np.subtract(k, j, out=j)  # in place: fresh pages dominate the cost at scale
    j += i + 1
    return i, j


def edge_cells(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    """Sorted, distinct upper-triangle cells of an undirected edge_index (self-loops ignored)."""
    row, col = edge_index.cpu().numpy()
    upper = row < col
    cells = encode_cells(row[upper], col[upper], num_nodes)
    if cells.size > 1 and not bool(np.all(cells[1:] > cells[:-1])):  # not coalesced: sort and dedupe
        cells = np.sort(cells)
        cells = cells[np.concatenate([[True], cells[1:] != cells[:-1]])]
    return cells


def cells_to_edge_index(cells: np.ndarray, num_nodes: int) -> Tensor:
    """Coalesced undirected edge_index (both directions, sorted by row then column) of sorted cells.

    Row r lists its lower entries (columns < r) before its upper ones (columns > r), so each
    entry's place in the merged order is its index in its own sorted half plus the number of
    entries of the other half that come before it: no sort of the full directed edge list.
    """
    n, m = num_nodes, cells.size
    i, j = decode_cells(cells, n)  # upper entries (i, j), sorted by (i, j)
    idx = np.arange(m, dtype=np.int64)
    out = np.empty((2, 2 * m), dtype=np.int64)
    lower_count = np.bincount(j, minlength=n)  # lower entries per row
    pos = np.cumsum(lower_count)[i]  # lower entries in rows <= i
    pos += idx
    out[0, pos], out[1, pos] = i, j
    lower = j * n
    lower += i
    lower.sort()  # lower entries (j, i) in (j, i) order; in place to spare a copy
    upper_before = np.searchsorted(i, np.arange(n), side="left")  # upper entries in rows < r
    del i, j
    row = np.repeat(np.arange(n, dtype=np.int64), lower_count)
    np.multiply(row, n, out=pos)  # reuse the buffer: fresh pages are the main cost at scale
    lower -= pos  # now the columns
    np.take(upper_before, row, out=pos)
    pos += idx
    out[0, pos], out[1, pos] = row, lower
    return torch.from_numpy(out)


def free_cells(ranks: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """The cells of the given ranks among the cells not in the sorted array `occupied`.

    Before occupied cell e_k lie e_k - k free cells, so the free cell of rank r is preceded by
    exactly the occupied cells with e_k - k <= r.
    """
    return ranks + np.searchsorted(occupied - np.arange(occupied.size), ranks, side="right")


def bernoulli_ranks(prob: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted ranks in [0, size), each included independently with probability `prob`.

    The gaps between successive successes of a Bernoulli(prob) sequence are i.i.d.
    Geometric(prob), so cumulative sums of geometric draws give the included ranks exactly,
    already sorted, in time proportional to their number rather than to `size`.
    """
    if prob <= 0.0 or size <= 0:
        return np.empty(0, dtype=np.int64)
    if prob >= 1.0:
        return np.arange(size, dtype=np.int64)
    chunks, last = [], -1
    while last < size - 1:
        expected = (size - 1 - last) * prob
        gaps = rng.geometric(prob, size=int(expected + 6.0 * math.sqrt(expected) + 64))
        # A gap above `size` already jumps past the end; capping keeps the sums clear of int64 overflow.
        ranks = last + np.cumsum(np.minimum(gaps, size + 1))
        chunks.append(ranks)
        last = int(ranks[-1])
    ranks = np.concatenate(chunks)
    return ranks[: np.searchsorted(ranks, size)]


def sample_non_edge_cells(count: int, occupied: np.ndarray, num_nodes: int, rng: np.random.Generator,
                          max_rounds: int = 100, total: int | None = None) -> np.ndarray:
    """A uniformly random set of `count` distinct cells outside the sorted array `occupied`, sorted.

    Each free cell is included independently with a probability a little above count/free,
    retrying in the rare case that fewer than `count` were included; then a uniformly random
    subset of the surplus is dropped. The included set, given its size, is a uniform subset
    of the free cells (all cells are alike), so the result is a uniform `count`-subset.
    `total`: the number of cells when they are not an n-node graph's upper triangle (a bipartite relation).
    """
    free = (num_cells(num_nodes) if total is None else total) - occupied.size
    if not 0 <= count <= free:
        raise ValueError(f"cannot choose {count} cells among {free} free ones")
    for attempt in range(max_rounds):
        prob = min((count + (5.0 + attempt) * math.sqrt(count) + 10.0) / max(free, 1), 1.0)
        ranks = bernoulli_ranks(prob, free, rng)
        if ranks.size >= count:
            break
    else:
        raise RuntimeError("non-edge sampler did not converge")  # unreachable in practice
    keep = np.ones(ranks.size, dtype=bool)
    keep[rng.choice(ranks.size, size=ranks.size - count, replace=False)] = False
    return free_cells(ranks[keep], occupied)


# ----------------------------------------------------------------------------------------------
# EdgeRand

def flip_probability(epsilon: float) -> float:
    """Probability 1/(e^eps + 1) that randomized response flips one adjacency cell."""
    return math.exp(-epsilon) / (1.0 + math.exp(-epsilon))  # overflow-free form


def edgerand_cells(cells: np.ndarray, num_nodes: int, epsilon: float, rng: np.random.Generator,
                   max_edges: int) -> np.ndarray:
    """EdgeRand output cells: every cell flips with probability 1/(e^eps+1), sampled sparsely.

    Kept edges are independent Bernoulli(1 - p) draws. The flipped non-edges are, by definition,
    independent Bernoulli(p) over the M0 non-edge cells (their number is Binomial(M0, p), their
    set given that number uniform); they are drawn as that Bernoulli process by geometric skips
    over the ranks of the non-edge cells, never touching the other cells.
    """
    p = flip_probability(epsilon)
    non_edges = num_cells(num_nodes) - cells.size
    expected = cells.size * (1.0 - p) + non_edges * p
    if expected > max_edges:
        if cells.size >= max_edges:
            need = "raise privacy.max_edges above the graph's own edge count"
        else:
            p_max = (max_edges - cells.size) / max(non_edges - cells.size, 1)
            need = f"use privacy.epsilon >= {math.log(1.0 / p_max - 1.0):.3g}, privacy=lapgraph, or a larger max_edges"
        raise ConfigError("privacy.epsilon", epsilon,
                          f"EdgeRand would release about {expected:.4g} edges on this graph, above "
                          f"privacy.max_edges={max_edges}; {need}")
    kept = cells[rng.random(cells.size) >= p]
    out = np.concatenate([kept, free_cells(bernoulli_ranks(p, non_edges, rng), cells)])
    out.sort()
    return out


# ----------------------------------------------------------------------------------------------
# LapGraph

def laplace_survival(t: np.ndarray | float, scale: float) -> np.ndarray:
    """P(X > t) for X ~ Laplace(0, scale)."""
    t = np.asarray(t, dtype=float)
    return np.where(t >= 0, 0.5 * np.exp(-np.abs(t) / scale), 1.0 - 0.5 * np.exp(-np.abs(t) / scale))


def laplace_between(size: int, low: float, high: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Draws of X ~ Laplace(0, scale) conditioned on low < X <= high, by inverting the survival function.

    Working with the survival function keeps full precision in the far upper tail, where the
    top cells of a large graph live.
    """
    s_low, s_high = float(laplace_survival(low, scale)), float(laplace_survival(high, scale))
    s = s_low - rng.random(size) * (s_low - s_high)  # uniform on (s_high, s_low]
    return np.where(s <= 0.5, -scale * np.log(2.0 * s), scale * np.log(2.0 * (1.0 - s)))


def top_noisy_cells(cells: np.ndarray, num_nodes: int, count: int, scale: float,
                    rng: np.random.Generator, margin_sd: float = 5.0, max_rounds: int = 100,
                    total: int | None = None) -> np.ndarray:
    """The `count` cells with the largest value of A + Laplace(scale) noise, sampled without the dense matrix.

    Edge cells (value 1) get explicit noisy values. The M0 non-edge cells carry i.i.d.
    Laplace noise, so for a threshold t the number of them above t is Binomial(M0, P(X > t)),
    and their values are i.i.d. Laplace conditioned on X > t. Pick t so that about `count`
    cells (plus a margin) are expected above it, sample that count and those values, merge
    with the edge values and keep the top `count`: since at least `count` cells exceed t, no
    cell below t can be among the top ones, so this is the exact top-`count` set. If fewer
    than `count` cells exceed t, lower the threshold to t' and add the non-edge cells in
    (t', t]: Binomial(remaining, P(t' < X <= t | X <= t)) of them, with values conditioned on
    that interval (sequential conditioning stays exact). Which non-edge cells are in the top
    set is independent of their values (i.i.d. noise), so their positions are a uniform
    random subset of the non-edge cells of the right size. `margin_sd` (standard deviations of
    the count above t) only trades the first threshold's overshoot against extra rounds.
    `total`: the number of cells when they are not an n-node graph's upper triangle (a bipartite relation).
    """
    total = num_cells(num_nodes) if total is None else total
    count = int(min(max(count, 1), total))
    non_edges = total - cells.size
    edge_values = 1.0 + rng.laplace(0.0, scale, size=cells.size)

    def expected_above(t: float) -> float:
        """Expected number of cells whose noisy value exceeds t."""
        return float(cells.size * laplace_survival(t - 1.0, scale) + non_edges * laplace_survival(t, scale))

    target = max(count + margin_sd * math.sqrt(count) + 10.0, 1.0)
    threshold, drawn, chunks = math.inf, 0, []
    for _ in range(max_rounds):
        if target >= total:
            lower = -math.inf
        else:
            # The bracket is O(1) wide and xtol O(scale): at a huge epsilon (tiny scale) bisection needs
            # up to log2(1 / scale) + 40 steps, far beyond brentq's default 100.
            lower = brentq(lambda t: expected_above(t) - target, -1.0 - 60.0 * scale, 1.0 + 60.0 * scale,
                           xtol=1e-12 * scale, maxiter=4000)
            lower = min(lower, threshold)
        s_low, s_high = float(laplace_survival(lower, scale)), float(laplace_survival(threshold, scale))
        inside = (s_low - s_high) / (1.0 - s_high) if s_high < 1.0 else 0.0
        k = int(rng.binomial(non_edges - drawn, min(max(inside, 0.0), 1.0)))
        chunks.append(laplace_between(k, lower, threshold, scale, rng))
        drawn += k
        threshold = lower
        if int((edge_values > threshold).sum()) + drawn >= count:
            break
        target *= 2.0
    else:
        raise RuntimeError("LapGraph threshold search did not converge")
    values = np.concatenate([edge_values, *chunks])
    top = np.argpartition(-values, count - 1)[:count]
    kept = cells[np.sort(top[top < cells.size])]
    added = sample_non_edge_cells(int((top >= cells.size).sum()), cells, num_nodes, rng, total=total)
    return np.sort(np.concatenate([kept, added]))


def noisy_edge_count(num_edges: int, epsilon: float, num_nodes: int, rng: np.random.Generator) -> int:
    """|E| + Laplace(1/epsilon), rounded and clamped to [1, number of cells]: LapGraph's output size."""
    noisy = round(num_edges + rng.laplace(0.0, 1.0 / epsilon))
    return int(min(max(noisy, 1), num_cells(num_nodes)))


# ----------------------------------------------------------------------------------------------
# Mechanisms

class GraphPerturbation(Mechanism):
    """Release a perturbed graph under edge-level eps-DP, then train and query a GNN on it only."""

    privacy_unit = "edge"
    releases = "graph"
    salt_name = "graph_perturbation"
    temporal = True

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        eps = check_number("privacy.epsilon", cfg.get("epsilon"), low=0.0, low_open=True)
        if not math.isfinite(eps):
            raise ConfigError("privacy.epsilon", cfg.get("epsilon"), "expected a finite number > 0")
        delta = cfg.get("delta", 0.0)
        if delta not in (0, 0.0, None):
            raise ConfigError("privacy.delta", delta, f"{self.name} is pure epsilon-DP; delta must be 0")
        self.epsilon = eps
        self.max_edges = check_number("privacy.max_edges", cfg.get("max_edges"), low=1, integer=True)

    def rng(self, seed: int) -> np.random.Generator:
        """The mechanism's own random stream: seeded, and independent of the data generator's."""
        return np.random.default_rng([seed, zlib.crc32(self.salt_name.encode())])

    def perturb_cells(self, cells: np.ndarray, num_nodes: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Released upper-triangle cells and the noise parameters to report."""
        raise NotImplementedError

    def perturb(self, data: Data, seed: int) -> tuple[Data, dict]:
        """The released graph: a shallow copy of `data` with the perturbed edges, and the privacy fields."""
        n = int(data.num_nodes)
        cells, params = self.perturb_cells(edge_cells(data.edge_index, n), n, self.rng(seed))
        released = with_edges(data, cells_to_edge_index(cells, n).to(data.edge_index.device))
        privacy = {"mechanism": self.name, "privacy_unit": self.privacy_unit, "epsilon": self.epsilon,
                   "delta": 0.0, **params, "perturbed_num_edges": int(cells.size)}
        return released, privacy

    def release_periods(self, data: Data, seed: int, periods: int) -> tuple[list[Tensor], dict]:
        """Continual release: each period's snapshot perturbed with its own noise at the per-period epsilon."""
        n = int(data.num_nodes)
        released, counts = [], []
        for t in range(periods):  # periods
            rng = np.random.default_rng([seed, zlib.crc32(self.salt_name.encode()), t])
            cells, params = self.perturb_cells(edge_cells(snapshot(data, t), n), n, rng)
            released.append(cells_to_edge_index(cells, n).to(data.tie_index.device))
            counts.append(int(cells.size))
        privacy = {"mechanism": self.name, **continual_release(self.epsilon, periods), "delta": 0.0,
                   **{k: v for k, v in params.items() if k not in ("noisy_edge_count",)},
                   "perturbed_num_edges": counts[-1]}
        return released, privacy

    def check_data(self, data: Data) -> None:
        """`privacy.relation` names one of the city's relations: a graph with one relation keeps the default."""
        relation = self.cfg.get("relation", "knows")
        if relation != "knows":
            raise ConfigError("privacy.relation", relation, f"{data.name} has one relation, released whole; the "
                              "relation is chosen on the city (data=synthetic_city) only: keep knows")

    def check_model(self, model_cfg: DictConfig) -> None:
        """A graph model: perturbing edges is pointless for one that ignores them."""
        if model_cfg.name not in SUPPORTED_MODELS and not is_plugin_model(model_cfg.name):  # plug-ins: graph models
            raise ConfigError("model.name", model_cfg.name,
                              f"{self.name} perturbs edges, which is pointless for a model that ignores them; "
                              f"supported models: {', '.join(SUPPORTED_MODELS)}")

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Perturb the graph, then fit the configured GNN on the released graph."""
        self.check_model(model_cfg)
        released, privacy = self.perturb(data, seed)
        torch.manual_seed(seed)
        num_classes = int(data.y.max()) + 1
        model = build_model(model_cfg, data.num_features, num_classes).to(data.x.device)
        result = fit(model, released, train_cfg, seed)
        return TrainedModel(model=model, graph=released, fit=result, privacy=privacy)


class EdgeRand(GraphPerturbation):
    """Randomized response on every adjacency cell (LinkTeller's EdgeRand): flip prob 1/(e^eps+1)."""

    name = "edgerand"
    salt_name = "edgerand"

    def perturb_cells(self, cells: np.ndarray, num_nodes: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Randomized response on all cells, with the flip probability used."""
        out = edgerand_cells(cells, num_nodes, self.epsilon, rng, self.max_edges)
        return out, {"flip_prob": flip_probability(self.epsilon)}

    def dp_event(self, privacy: dict) -> object:
        """Randomized response on the one adjacency cell two neighbouring graphs differ in (2 buckets)."""
        import dp_accounting as dpa

        return dpa.RandomizedResponseDpEvent(noise_parameter=2 * privacy["flip_prob"], num_buckets=2)


class LapGraph(GraphPerturbation):
    """Laplace noise on every adjacency cell, keep the top-T cells, T a noisy edge count (LapGraph)."""

    name = "lapgraph"
    salt_name = "lapgraph"

    def perturb_cells(self, cells: np.ndarray, num_nodes: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Spend 1% of epsilon on T = |E| + Lap, 99% on the cell noise; keep the T largest cells."""
        eps_count = LAPGRAPH_COUNT_SHARE * self.epsilon
        eps_cells = self.epsilon - eps_count
        count = noisy_edge_count(cells.size, eps_count, num_nodes, rng)
        if count > self.max_edges:
            raise ConfigError("privacy.max_edges", self.max_edges,
                              f"LapGraph would release {count} edges; raise privacy.max_edges")
        scale = 1.0 / eps_cells
        out = top_noisy_cells(cells, num_nodes, count, scale, rng)
        return out, {"laplace_scale": scale, "edge_count_epsilon": eps_count, "noisy_edge_count": count}

    def dp_event(self, privacy: dict) -> object:
        """Laplace noise on the edge count and on the one differing cell (sensitivity 1 each), composed."""
        import dp_accounting as dpa

        return dpa.ComposedDpEvent([dpa.LaplaceDpEvent(1.0 / privacy["edge_count_epsilon"]),
                                    dpa.LaplaceDpEvent(privacy["laplace_scale"])])
