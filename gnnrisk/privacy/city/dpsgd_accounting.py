"""Accounting of node-level DP-SGD on the city (`hetero_dpsgd`): the group of examples one unit can change, and the
composed Gaussian steps. Derivation in docs/privacy_city_dpsgd.md; in brief:

An example is one (place p, training origin s) pair: the Poisson loss of p's count in s + 1 at the log-rate that
a K-layer hetero_sage computes from snapshot s. Messages flow along the message relations
(`dpsgd_model.MESSAGE_RELATIONS`), whose fan-out per source node is bounded on the capped city: a person sends to
<= D_knows people, 1 home, <= D_frequents places and <= D_involved recorded incidents; an incident to its one place;
a place to its grid neighbours (public). A unit changes layer-0 rows (its own nodes, and the record-derived features
it feeds) and the edges out of its own nodes; a node's layer-k row can change only if a changed layer-0 row lies
within k hops upstream. So the places that can change are those reachable in <= K hops, counted by where a path
first lands on a place: a place first changed at layer j changes at most B_{K-j} places at layer K, B_r being the
largest ball of radius r on the public grid (read from the adjacency). Per origin, person unit (record-derived
features kept, their columns at the person's D_involved incident places changed at layer 0):

  N_K = D_involved B_K + sum_{j=0}^{K-1} D_knows^j (1 + D_frequents) B_{K-1-j}
        + sum_{j=2}^{K-1} D_knows^{j-1} D_involved B_{K-1-j}

(people first reached at layer j: D_knows^j, each sending to 1 + D_frequents places; their incidents, reached a
layer later, each to one place; the incidents' places appear at layer 1 instead of 0 when record-derived features
are dropped: D_involved B_{K-1}). Incident unit: its place's count features change at layer 0 and its one message
goes to that place: N_K = B_K (B_{K-1} without record-derived features); the incident's person's involvement counts
are dropped under this unit (no cap bounds that person's ties). The labels a unit changes are at its incident
places, inside the count. N_K is capped by the number of places, and a fit over T origins has a group of
G = N_K T examples (the person's ties are in every snapshot).

Each changed example's clipped gradient moves by <= 2C (it exists in both cities: replaced, not removed), so a
full-batch step's clipped sum has L2 sensitivity 2 G C and gets N(0, (z 2 G C)^2 I): a Gaussian mechanism of noise
multiplier z. No sampling amplification is claimed: every step of every fit composes as a Gaussian (RDP
alpha / (2 z^2) each), converted at delta; z is the smallest whose epsilon is <= the target (bisection).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch_geometric.data import HeteroData

from gnnrisk.privacy import accounting as acc
from gnnrisk.privacy.city.units import Unit

ACCOUNTANT = ("rdp: every full-batch DP-SGD step of every fit a Gaussian mechanism on the clipped sum, L2 sensitivity "
              "2 G C (G = places within K hops of the unit x training origins), noise std z 2 G C; no amplification")
DENSE_BALLS = 4096  # places up to which the grid's balls are counted exactly (a P x P reachability matrix)


def ball_sizes(data: HeteroData, layers: int) -> list[int]:
    """B_0..B_K: the most places within r grid steps of one place, from the public adjacency (beyond DENSE_BALLS
    places, the max-degree bound 1 + A sum_{j<r} (A-1)^j)."""
    places = int(data["place"].num_nodes)
    ei = data["place", "adjacent", "place"].edge_index
    if places > DENSE_BALLS:
        a = int(torch.bincount(ei[0], minlength=places).max()) if ei.numel() else 0
        return [min(places, 1 + a * sum((a - 1) ** j for j in range(r))) for r in range(layers + 1)]
    adj = torch.zeros(places, places)
    adj[ei[1], ei[0]] = 1.0
    reach, out = torch.eye(places), [1]
    for _ in range(layers):
        reach = ((reach + adj @ reach) > 0).float()
        out.append(int(reach.sum(0).max()))
    return out


def reach_terms(unit: Unit, caps: dict[str, int], layers: int, balls: list[int], record_features: bool
                ) -> dict[str, int]:
    """Upper bounds on the places one unit can change at layer K in one snapshot, by how the change arrives."""
    first = 0 if record_features else 1  # the layer at which the unit's incident places first change
    if unit.kind == "incident":
        return {"the incident's place": balls[layers - first]}
    dk, df, di = int(caps["knows"]), int(caps["frequents"]), int(caps["involved_in"])
    terms = {"the person's incident places": di * balls[layers - first]}
    for j in range(layers):
        terms[f"home and frequented places of people at depth {j}"] = dk ** j * (1 + df) * balls[layers - 1 - j]
    for j in range(2, layers):
        terms[f"places of incidents at depth {j}"] = dk ** (j - 1) * di * balls[layers - 1 - j]
    return terms


def reach_bound(unit: Unit, caps: dict[str, int], layers: int, balls: list[int], record_features: bool,
                places: int) -> int:
    """N_K: the places (examples per origin) one unit can change, at most every place."""
    return min(places, sum(reach_terms(unit, caps, layers, balls, record_features).values()))


def epsilon_spent(z: float, steps: int, delta: float) -> float:
    """(epsilon, delta) of `steps` Gaussian mechanisms of noise multiplier z, composed with RDP over acc.ORDERS
    (fractional orders too: a plain Gaussian's RDP holds at every order, and large epsilons need orders near 1)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return acc.epsilon_from_rdp(acc.rdp_gaussian(z, 1.0, steps=steps, orders=acc.ORDERS), delta, orders=acc.ORDERS)


def calibrate(target_epsilon: float, delta: float, steps: int, context: str) -> tuple[float, float]:
    """Smallest noise multiplier z whose composed epsilon is <= target; (z, epsilon spent)."""
    return acc.calibrate_noise(target_epsilon, delta, lambda z: epsilon_spent(z, steps, delta), context=context)


def hetero_dpsgd_dp_event(privacy: dict[str, Any]) -> Any:
    """The run's DpEvent for an independent recount (dp_accounting): its steps, each a Gaussian of noise multiplier z
    (std z 2 G C over sensitivity 2 G C); None when no noise was added."""
    import dp_accounting as dpa

    if privacy.get("epsilon") is None:
        return None
    return dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(float(privacy["noise_multiplier"])),
                                   int(privacy["steps_composed"]))


__all__ = ["ACCOUNTANT", "ball_sizes", "calibrate", "epsilon_spent", "hetero_dpsgd_dp_event", "reach_bound",
           "reach_terms"]
