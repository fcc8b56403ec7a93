"""Incidents: a self-exciting process over places and people, and its exact expected counts.

Background incidents arrive at place p at `rates[p]` per day; each involves one person attached to
the place (resident or visitor), drawn with weight exp(risk_effect * risk + group_effect[group]).
Every incident then triggers, after Exponential(mean `mean_delay_days`) delays,
  - Poisson(near_repeat) near-repeats: at a place one rounded Gaussian move (`spread` cells) away,
    involving a person drawn there as for a background incident;
  - Poisson(social) social offspring (if the person involved has ties): involving a uniformly chosen
    tie of that person, at a uniformly chosen place of theirs (home or a frequented place).
This is the cluster representation of a multivariate Hawkes process, simulated by generations
(`hawkes.run_cascade`); each incident keeps its parent (-1 background) and its cause.

The ground truth `expected_counts` is the compensator: the integral over each period of each
place's (and each person's) conditional intensity given the incidents before, which is what a
perfect forecaster of period k would predict given everything up to each moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d

from gnnrisk.data.city import places as pl
from gnnrisk.data.city.hawkes import Marks, run_cascade

BACKGROUND, NEAR_REPEAT, SOCIAL = 0, 1, 2
CAUSES = ("background", "near_repeat", "social")


@dataclass(frozen=True)
class Crime:
    """The parameters of the incident process (rates per day, branching ratios, spread in cells)."""

    near_repeat: float
    social: float
    mean_delay_days: float
    spread: float
    horizon: float  # days simulated: periods * period_days
    period_days: float
    periods: int


@dataclass(frozen=True)
class Society:
    """Who is where and who knows whom, as the incident process reads them."""

    side: int
    rates: np.ndarray  # background incidents per day per place
    att: pl.Attachments
    weight: np.ndarray  # involvement weight of each attachment, in place order
    cum_weight: np.ndarray  # its cumulative sum
    tie_ptr: np.ndarray  # CSR of ties by person
    tie_col: np.ndarray

    @property
    def degree(self) -> np.ndarray:
        """Number of ties per person."""
        return np.diff(self.tie_ptr)


def society(side: int, rates: np.ndarray, att: pl.Attachments, weight: np.ndarray, edges: np.ndarray,
            num_people: int) -> Society:
    """Index the ties (undirected [2, M]) by person and the involvement weights by place."""
    src = np.concatenate([edges[0], edges[1]])
    dst = np.concatenate([edges[1], edges[0]])
    order = np.argsort(src, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=num_people))])
    w = weight[att.person]
    return Society(side, rates, att, w, np.cumsum(w), ptr, dst[order])


def pick_person(soc: Society, place: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A person attached to each place, drawn in proportion to involvement weight."""
    lo, hi = soc.att.place_ptr[place], soc.att.place_ptr[place + 1]
    before = np.where(lo > 0, soc.cum_weight[np.maximum(lo - 1, 0)], 0.0)
    total = soc.cum_weight[hi - 1] - before
    idx = np.searchsorted(soc.cum_weight, before + rng.random(place.size) * total, side="right")
    return soc.att.person[np.clip(idx, lo, hi - 1)]


def pick_tie(soc: Society, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly chosen tie of each person (all of whom have at least one)."""
    deg = soc.degree[person]
    return soc.tie_col[soc.tie_ptr[person] + (rng.random(person.size) * deg).astype(np.int64)]


def pick_place(soc: Society, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly chosen place of each person: home or a frequented place."""
    lo, count = soc.att.person_ptr[person], np.diff(soc.att.person_ptr)[person]
    return soc.att.place[soc.att.by_person[lo + (rng.random(person.size) * count).astype(np.int64)]]


def simulate(soc: Society, crime: Crime, rng: np.random.Generator) -> Marks:
    """All incidents in [0, horizon): marks t, place, person, cause, parent (sorted by time)."""
    n0 = rng.poisson(soc.rates * crime.horizon)
    place = np.repeat(np.arange(soc.rates.size), n0)
    background = {"t": rng.uniform(0.0, crime.horizon, place.size), "place": place,
                  "person": pick_person(soc, place, rng), "cause": np.full(place.size, BACKGROUND)}
    has_ties = soc.degree > 0

    def spawn(parents: Marks, index: np.ndarray) -> Marks:
        """Near-repeat and social offspring of one generation."""
        k_near = rng.poisson(crime.near_repeat, index.size)
        k_soc = rng.poisson(crime.social * has_ties[parents["person"]])
        near = np.repeat(np.arange(index.size), k_near)
        soc_src = np.repeat(np.arange(index.size), k_soc)
        near_place = pl.move(parents["place"][near], pl.draw_offsets(crime.spread, near.size, rng), soc.side)
        tie = pick_tie(soc, parents["person"][soc_src], rng)
        src = np.concatenate([near, soc_src])
        return {"t": parents["t"][src] + rng.exponential(crime.mean_delay_days, src.size),
                "place": np.concatenate([near_place, pick_place(soc, tie, rng)]),
                "person": np.concatenate([pick_person(soc, near_place, rng), tie]),
                "cause": np.concatenate([np.full(near.size, NEAR_REPEAT), np.full(soc_src.size, SOCIAL)]),
                "parent": index[src]}

    return run_cascade(background, spawn, crime.horizon)


def spread_over_grid(mass: np.ndarray, side: int, sd: float) -> np.ndarray:
    """Push per-place mass [P, K] through one near-repeat move (the move kernel is symmetric)."""
    _, p = pl.offset_law(sd)
    grid = mass.reshape(side, side, -1)
    grid = correlate1d(correlate1d(grid, p, axis=0, mode="reflect"), p, axis=1, mode="reflect")
    return grid.reshape(side * side, -1)


def delay_mass(t: np.ndarray, start: float, end: float, mean_delay: float) -> np.ndarray:
    """Probability that an offspring of an incident at time t falls in [start, end)."""
    lo = np.maximum(start, t) - t
    hi = end - t
    return np.where(hi > 0, np.exp(-lo / mean_delay) - np.exp(-np.maximum(hi, 0) / mean_delay), 0.0)


def expected_counts(soc: Society, crime: Crime, inc: Marks, num_people: int) -> tuple[np.ndarray, np.ndarray]:
    """The compensator per (place, period) [P, K] and per (person, period) [N, K]."""
    num_places, K, D = soc.rates.size, crime.periods, crime.period_days
    att = soc.att
    eligible = soc.degree[inc["person"]] > 0
    near_src = np.empty((num_places, K))
    soc_src = np.zeros((num_people, K))
    for k in range(K):  # periods, each vectorised over incidents
        w = delay_mass(inc["t"], k * D, (k + 1) * D, crime.mean_delay_days)
        near_src[:, k] = np.bincount(inc["place"], weights=crime.near_repeat * w, minlength=num_places)
        soc_src[:, k] = np.bincount(inc["person"], weights=crime.social * w * eligible, minlength=num_people)
    drawn_at_place = soc.rates[:, None] * D + spread_over_grid(near_src, soc.side, crime.spread)

    # social offspring: each source person passes 1/degree of its mass to every tie ...
    rows = np.flatnonzero(soc_src.any(axis=1))
    deg = soc.degree[rows]
    owner = np.repeat(np.arange(rows.size), deg)
    pos = soc.tie_ptr[rows][owner] + np.arange(owner.size) - np.repeat(np.cumsum(deg) - deg, deg)
    tie = soc.tie_col[pos]
    # ... and each tie spreads it evenly over their places
    n_places_of = np.diff(att.person_ptr)
    place_total = np.bincount(att.place, weights=soc.weight, minlength=num_places)
    share = soc.weight / place_total[att.place]  # P(person | place) for each attachment
    by_place = np.empty((num_places, K))
    by_person = np.empty((num_people, K))
    for k in range(K):
        social_person = np.bincount(tie, weights=soc_src[rows, k][owner] / deg[owner], minlength=num_people)
        social_place = np.bincount(att.place, weights=social_person[att.person] / n_places_of[att.person],
                                   minlength=num_places)
        by_place[:, k] = drawn_at_place[:, k] + social_place
        by_person[:, k] = np.bincount(att.person, weights=share * drawn_at_place[att.place, k],
                                      minlength=num_people) + social_person
    return by_place, by_person
