"""The city's geography: a grid of places, hotspots, group territories, homes, haunts and patrols.

Places are the cells of a `side` x `side` grid, numbered row-major (id = row * side + col) before the
final shuffle. Moves on the grid (a frequented place, a near-repeat) are rounded Gaussian offsets
reflected at the edge, so that no mass leaves the city and the kernel of a move is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from gnnrisk.data import synthetic as syn


def reflect(a: np.ndarray, side: int) -> np.ndarray:
    """Fold integer coordinates back into [0, side) by reflection at the edges (any distance)."""
    a = np.mod(a, 2 * side)
    return np.where(a >= side, 2 * side - 1 - a, a)


def grid_adjacency(side: int) -> np.ndarray:
    """Rook adjacency of the grid as directed edges [2, E] (both directions)."""
    ids = np.arange(side * side).reshape(side, side)
    u = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    v = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    return np.stack([np.concatenate([u, v]), np.concatenate([v, u])])


def offset_law(sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and probabilities of round(N(0, sd^2)) clipped to |d| <= ceil(4 sd), per axis."""
    r = int(np.ceil(4 * sd))
    d = np.arange(-r, r + 1)
    if sd == 0:
        return d, np.ones(1)
    cdf = ndtr((np.concatenate([d - 0.5, [r + 0.5]])) / sd)
    cdf[0], cdf[-1] = 0.0, 1.0  # the clip puts the tails on the end points
    return d, np.diff(cdf)


def draw_offsets(sd: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Rounded, clipped Gaussian offsets [size, 2] drawn from `offset_law`."""
    r = int(np.ceil(4 * sd))
    return np.clip(np.rint(rng.normal(0.0, sd, size=(size, 2))), -r, r).astype(np.int64) if sd > 0 \
        else np.zeros((size, 2), dtype=np.int64)


def move(place: np.ndarray, offset: np.ndarray, side: int) -> np.ndarray:
    """The place reached from `place` by `offset` (rows, cols), reflected at the edges."""
    row, col = place // side + offset[:, 0], place % side + offset[:, 1]
    return reflect(row, side) * side + reflect(col, side)


def move_kernel(side: int, sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact law of `move` with `draw_offsets`: (from place, to place, probability), duplicates summed."""
    d, p = offset_law(sd)
    dr, dc = np.meshgrid(d, d, indexing="ij")
    prob = np.outer(p, p).ravel()
    keep = prob > 0
    dr, dc, prob = dr.ravel()[keep], dc.ravel()[keep], prob[keep]
    places = np.arange(side * side)
    src = np.repeat(places, prob.size)
    offset = np.stack([np.tile(dr, places.size), np.tile(dc, places.size)], axis=1)
    dst = move(src, offset, side)
    key = src * side * side + dst
    uniq, inv = np.unique(key, return_inverse=True)
    return uniq // (side * side), uniq % (side * side), np.bincount(inv, weights=np.tile(prob, places.size))


def hotspot_rates(side: int, mean_rate: float, sd: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Background incidents per day per place: a smooth log-Gaussian field with mean exactly `mean_rate`."""
    field = rng.standard_normal((side, side))
    if scale > 0:
        field = gaussian_filter(field, sigma=scale, mode="reflect")
    z = (field - field.mean()) / max(field.std(), 1e-12)
    w = np.exp(sd * z.ravel())
    return mean_rate * w / w.mean()


def territories(side: int, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A group per place: bands across the city along a random direction, sized like the groups."""
    angle = rng.uniform(0, np.pi)
    rows, cols = np.divmod(np.arange(side * side), side)
    proj = rows * np.cos(angle) + cols * np.sin(angle) + rng.uniform(0, 1e-6, side * side)  # random tie-break
    rank = np.argsort(np.argsort(proj)) / (side * side)
    return np.minimum(np.searchsorted(np.cumsum(sizes), rank, side="right"), sizes.size - 1)


def homes(group: np.ndarray, territory: np.ndarray, segregation: float, rng: np.random.Generator) -> np.ndarray:
    """Each person's home: with probability `segregation` a random place of their group's territory, else any."""
    n, num_places = group.shape[0], territory.shape[0]
    order = np.argsort(territory, kind="stable")
    count = np.bincount(territory, minlength=int(group.max()) + 1)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    own = order[np.minimum(start[group] + (rng.random(n) * count[group]).astype(np.int64), num_places - 1)]
    anywhere = rng.integers(0, num_places, n)
    return np.where((rng.random(n) < segregation) & (count[group] > 0), own, anywhere)


@dataclass(frozen=True)
class Attachments:
    """Who is found where: (person, place) pairs sorted by place, with CSR pointers both ways."""

    person: np.ndarray
    place: np.ndarray
    place_ptr: np.ndarray  # attachments of place p: [place_ptr[p], place_ptr[p + 1])
    by_person: np.ndarray  # attachment indices sorted by person
    person_ptr: np.ndarray


def frequented(home: np.ndarray, side: int, k: int, travel_sd: float, rng: np.random.Generator) -> np.ndarray:
    """Frequented places as (person, place) [2, F]: k draws around home, merged, home and repeats dropped."""
    n, num_places = home.shape[0], side * side
    person = np.repeat(np.arange(n), k)
    place = move(home[person], draw_offsets(travel_sd, person.size, rng), side)
    keep = place != home[person]
    key = np.unique(person[keep] * num_places + place[keep])
    person, place = key // num_places, key % num_places
    empty = np.flatnonzero(np.bincount(np.concatenate([home, place]), minlength=num_places) == 0)
    if empty.size:  # a place nobody lives at or visits gets one random visitor, so every incident has a person
        person = np.concatenate([person, rng.integers(0, n, empty.size)])
        place = np.concatenate([place, empty])
    return np.stack([person, place])


def attachments(home: np.ndarray, freq: np.ndarray, num_places: int) -> Attachments:
    """Index homes and frequented places together, both by place and by person."""
    person = np.concatenate([np.arange(home.shape[0]), freq[0]])
    place = np.concatenate([home, freq[1]])
    order = np.lexsort((person, place))
    person, place = person[order], place[order]
    place_ptr = np.concatenate([[0], np.cumsum(np.bincount(place, minlength=num_places))])
    by_person = np.argsort(person, kind="stable")
    person_ptr = np.concatenate([[0], np.cumsum(np.bincount(person, minlength=home.shape[0]))])
    return Attachments(person, place, place_ptr, by_person, person_ptr)


def patrol_presence(rates: np.ndarray, home: np.ndarray, group: np.ndarray, num_groups: int, coverage: float,
                    hotspot_effect: float, group_effect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patrol presence per place in (0, 1), mean `coverage`, and each place's resident shares [P, groups].

    logit(presence) = c + hotspot_effect * standardised log rate + sum_g group_effect[g] * share of g.
    """
    num_places = rates.shape[0]
    counts = np.bincount(home * num_groups + group, minlength=num_places * num_groups).reshape(num_places, -1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    log_rate = np.log(rates)
    z = (log_rate - log_rate.mean()) / log_rate.std() if log_rate.std() > 1e-12 else np.zeros(num_places)
    effect = hotspot_effect * z + share @ group_effect
    return syn._sigmoid(syn._calibrated_intercept(effect, coverage) + effect), share
