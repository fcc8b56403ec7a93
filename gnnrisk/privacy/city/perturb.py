"""EdgeRand and LapGraph on one relation of the city: the released city differs in that relation only.

A relation is a set of cells: for `knows` (people to people, stored in both directions) the unordered
pairs of people, as the homogeneous mechanisms' upper triangle; for a relation between two node types
(`lives_at`, `frequents`: people to places) every (person, place) pair, cell = person * places + place.
Neighbouring cities differ in one cell (unit `edge:<relation>`), so the mechanisms of
`gnnrisk.privacy.graph_perturbation` apply cell by cell: EdgeRand flips each cell with probability
1 / (e^eps + 1), LapGraph adds Laplace(1 / eps_cells) to each cell and keeps the top noisy count of cells
(1% of epsilon on that count). The non-edge cells are never materialised. The released relation replaces
the true one, with its reverse (`rev_<relation>`), in a shallow copy of the city: every forecaster reads it,
nothing else of the city changes.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError
from gnnrisk.privacy.graph_perturbation import (
    LAPGRAPH_COUNT_SHARE,
    bernoulli_ranks,
    cells_to_edge_index,
    edge_cells,
    edgerand_cells,
    flip_probability,
    free_cells,
    num_cells,
    top_noisy_cells,
)

METHODS = ("edgerand", "lapgraph")
Relation = tuple[str, str, str]


def relation_cells(data: HeteroData, relation: Relation) -> tuple[np.ndarray, int]:
    """Sorted distinct cells of `relation` and the number of cells it could hold."""
    src, _, dst = relation
    ei = data[relation].edge_index.cpu()
    if src == dst:
        n = int(data[src].num_nodes)
        return edge_cells(ei, n), num_cells(n)
    width = int(data[dst].num_nodes)
    cells = np.unique(ei[0].numpy().astype(np.int64) * width + ei[1].numpy())
    return cells, int(data[src].num_nodes) * width


def cells_to_relation(cells: np.ndarray, data: HeteroData, relation: Relation) -> torch.Tensor:
    """The edge_index of `relation` holding `cells` (both directions for a relation within one type)."""
    src, _, dst = relation
    if src == dst:
        return cells_to_edge_index(cells, int(data[src].num_nodes))
    width = int(data[dst].num_nodes)
    return torch.from_numpy(np.stack([cells // width, cells % width]))


def edgerand_any(cells: np.ndarray, total: int, epsilon: float, rng: np.random.Generator, max_edges: int,
                 people: int | None) -> np.ndarray:
    """EdgeRand over `total` cells (`people`: the upper triangle of that many, else a bipartite block)."""
    if people is not None:
        return edgerand_cells(cells, people, epsilon, rng, max_edges)
    p = flip_probability(epsilon)
    expected = cells.size * (1 - p) + (total - cells.size) * p
    if expected > max_edges:
        raise ConfigError("privacy.epsilon", epsilon, f"EdgeRand would release about {expected:.4g} edges of this "
                          f"relation, above privacy.max_edges={max_edges}; use a larger epsilon, privacy=lapgraph, "
                          "or a larger max_edges")
    kept = cells[rng.random(cells.size) >= p]
    out = np.concatenate([kept, free_cells(bernoulli_ranks(p, total - cells.size, rng), cells)])
    out.sort()
    return out


def lapgraph_any(cells: np.ndarray, total: int, epsilon: float, rng: np.random.Generator, max_edges: int,
                 people: int | None) -> tuple[np.ndarray, dict[str, float]]:
    """LapGraph over `total` cells: a noisy count T (1% of epsilon), then the T largest noisy cells."""
    eps_count = LAPGRAPH_COUNT_SHARE * epsilon
    count = int(min(max(round(cells.size + rng.laplace(0.0, 1.0 / eps_count)), 1), total))
    if count > max_edges:
        raise ConfigError("privacy.max_edges", max_edges, f"LapGraph would release {count} edges; raise it")
    scale = 1.0 / (epsilon - eps_count)
    out = top_noisy_cells(cells, people or 0, count, scale, rng, total=total)
    return out, {"laplace_scale": scale, "edge_count_epsilon": eps_count, "noisy_edge_count": count}


def perturb_relation(data: HeteroData, relation: Relation, method: str, epsilon: float, max_edges: int,
                     rng: np.random.Generator) -> tuple[HeteroData, dict[str, float | int]]:
    """A shallow copy of the city with `relation` (and its reverse) released by `method`, and the noise used."""
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigError("privacy.epsilon", epsilon, "expected a finite number > 0")
    cells, total = relation_cells(data, relation)
    src, name, dst = relation
    people = int(data[src].num_nodes) if src == dst else None
    if method == "edgerand":
        out, params = edgerand_any(cells, total, epsilon, rng, max_edges, people), {
            "flip_prob": flip_probability(epsilon)}
    elif method == "lapgraph":
        out, params = lapgraph_any(cells, total, epsilon, rng, max_edges, people)
    else:
        raise ConfigError("privacy.name", method, "expected one of " + ", ".join(METHODS))
    released = copy.copy(data)
    edge_index = cells_to_relation(out, data, relation).to(data[relation].edge_index.device)
    released[relation].edge_index = edge_index
    if src != dst:
        released[dst, f"rev_{name}", src].edge_index = edge_index.flip(0)
    return released, {**params, "perturbed_num_edges": int(out.size)}  # the true counts are not released
