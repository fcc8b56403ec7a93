"""Link attacks per relation on the city (data=synthetic_city): LinkTeller (`attack=linkteller`) and link stealing
(`attack=lsa`) against the run's forecaster, scored against the TRUE relation whatever the mechanism released.

Threat model. The attacker queries the forecasting service of the run: the run's forecaster (`model=`) trained on
what the mechanism released (privacy=none: the true city; edgerand/lapgraph: the city with the relation
`privacy.relation` released), answering with the released city. It wants to know which pairs are tied in a
relation r of `gnnrisk.privacy.city.units.EDGE_RELATIONS` (knows, lives_at, frequents: the ties a privacy unit can
protect). The place grid (`adjacent`) is public; the incident links are facts of their incidents (the canary audit
at the incident unit): both refused as targets of a link attack.

- LinkTeller (Wu et al., IEEE S&P 2022), `attack.linkteller`: `num_pairs` distinct true ties of `relation` drawn
  uniformly and as many distinct non-ties (a balanced sample). For a pair one end's forecast is read: the end of the
  forecast type (`eval.target`; for knows under eval.target=person, v of (u, v)); the other end's input row (its
  snapshot features) is scaled by 1 + `delta` and the forecaster is queried again at the run's latest origin, with
  the weights the run trained for it (`attack_model.fit_forecaster` retrains them as the run did, seeded). Influence
  = |change of the read end's log forecast| / delta (the relative change: comparable between busy and quiet nodes).
  Metrics: AUROC ties vs non-ties, precision (and recall) at the true tie count and at k/4 ... 4k, pairs, nodes.
  `relation` null: knows for eval.target=person, lives_at for place. Refused before training: a relation that no
  end of the forecast type is on (knows under eval.target=place), one the model reads no tie of
  (`mechanisms.relations_read`), a model that reads no node features (the analysts' baselines), and
  privacy=hetero_gap: its release is one set of noisy forecasts; a query with perturbed inputs is a second release,
  which with fresh noise its epsilon does not cover, and with the run's noise held fixed lets the noise cancel in
  the difference, which no answer of the mechanism does (a leakage no DP claim is made about). Its unit is audited
  by attack=canary. Any other mechanism that trains its own forecaster is refused too (`trains_inside`: the
  retrained model would not be the one it released). The homogeneous keys `setting`, `pairs`, `num_nodes` are not read on the city (transductive,
  balanced).
- Link stealing attack-0 (He et al., USENIX Security 2021), `attack.lsa`: unsupervised; `num_pairs` true ties and as
  many non-ties, each scored by the distance between the two ends' "posteriors", here each node's released
  forecast vector over the run's origins (the rates of `forecast.csv`: the service's answers, no extra query); AUROC
  per distance (smaller = tied), the best named. Both ends must be forecast: knows under eval.target=person (a place
  relation to attack would be the public grid). Any forecaster and any mechanism (hetero_gap's forecasts are its
  release). Close forecasts of friends come from homophily too (communities, groups, homes): compare with a model
  that reads no knows tie (model=person_history) for what the forecasts share without the model reading the ties.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from gnnrisk.attack.linkteller import precision_recall_at_density
from gnnrisk.attack.lsa import DISTANCES, distance_aurocs
from gnnrisk.attack.pairs import balanced_pairs
from gnnrisk.attack.scores import auroc
from gnnrisk.errors import ConfigError, Refusals, check_choice, check_number
from gnnrisk.models.hetero import HETERO_MODELS
from gnnrisk.privacy.city.attack_model import (
    CityRun,
    fit_forecaster,
    refuse_trained_inside,
)
from gnnrisk.privacy.city.mechanisms import relations_read
from gnnrisk.privacy.city.units import EDGE_RELATIONS, NOT_EDGE_UNITS

Relation = tuple[str, str, str]
QUERYABLE = (*HETERO_MODELS, "gconv_gru", "gconv_lstm", "lstm")  # forecasters that read node features
DEFAULT_RELATION = {"person": "knows", "place": "lives_at"}


def attack_relation(field: str, value: Any) -> Relation:
    """`value` as one of the city's attackable relations, else a one-line ConfigError saying why not."""
    if value in NOT_EDGE_UNITS:
        raise ConfigError(field, value, f"not a private tie: {NOT_EDGE_UNITS[value]}; attackable: "
                          + ", ".join(EDGE_RELATIONS))
    if value not in EDGE_RELATIONS:
        raise ConfigError(field, value, "the city has no such relation to attack; expected one of "
                          + ", ".join(EDGE_RELATIONS))
    return EDGE_RELATIONS[value]


def tie_cells(data: HeteroData, relation: Relation) -> tuple[Tensor, int, int]:
    """Distinct ties of `relation` as cells (src * n_dst + dst; for a relation within one type, u < v) and the
    number of cells of each kind: (cells, ties, non-ties)."""
    src, _, dst = relation
    ei = data[relation].edge_index.cpu()
    n_src, n_dst = int(data[src].num_nodes), int(data[dst].num_nodes)
    if src == dst:
        ei = ei[:, ei[0] < ei[1]]
        total = n_src * (n_src - 1) // 2
    else:
        total = n_src * n_dst
    cells = torch.unique(ei[0] * n_dst + ei[1])
    return cells, cells.numel(), total - cells.numel()


def check_pair_count(field: str, value: Any, data: HeteroData | None, relation: Relation) -> int:
    """`num_pairs` as an integer >= 2 and at most the relation's ties and non-ties, else a ConfigError."""
    count = int(check_number(field, value, low=2, integer=True))
    if data is not None:
        _, ties, free = tie_cells(data, relation)
        if count > min(ties, free):
            raise ConfigError(field, count, f"expected at most {min(ties, free)} (the distinct {relation[1]} ties "
                              f"of the city: {ties}; its non-ties: {free})")
    return count


def relation_pairs(data: HeteroData, relation: Relation, count: int, generator: torch.Generator,
                   field: str) -> tuple[Tensor, Tensor]:
    """`count` distinct true ties drawn uniformly and `count` distinct non-ties: pairs [2, 2 count] (row 0 of the
    source type, row 1 of the destination type) and labels (True = tie)."""
    src, _, dst = relation
    if src == dst:
        return balanced_pairs(data[relation].edge_index.cpu(), int(data[src].num_nodes), count, generator, field)
    cells, _, _ = tie_cells(data, relation)
    n_dst, total = int(data[dst].num_nodes), int(data[src].num_nodes) * int(data[dst].num_nodes)
    ties = cells[torch.randperm(cells.numel(), generator=generator)[:count]]
    found = torch.empty(0, dtype=torch.long)
    while found.numel() < count:  # rejection draws; the count is checked against the non-ties
        draw = torch.randint(0, total, (2 * count + 16,), generator=generator)
        found = torch.unique(torch.cat([found, draw[~torch.isin(draw, cells)]]))
    free = found[torch.randperm(found.numel(), generator=generator)[:count]]
    keys = torch.cat([ties, free])
    labels = torch.cat([torch.ones(count), torch.zeros(count)]).bool()
    return torch.stack([keys // n_dst, keys % n_dst]), labels


# --- LinkTeller ---------------------------------------------------------------------------------------------------

def linkteller_relation(block: Mapping[str, Any], target: str) -> Relation:
    """`attack.linkteller.relation` (null: knows for people, lives_at for places), one end of the forecast type."""
    value = block.get("relation")
    relation = attack_relation("attack.linkteller.relation", DEFAULT_RELATION[target] if value is None else value)
    if target not in (relation[0], relation[2]):
        raise ConfigError("attack.linkteller.relation", relation[1], f"joins {relation[0]} to {relation[2]}: "
                          f"neither end has a forecast (eval.target={target}); with eval.target={target} attack "
                          + ", ".join(r for r, (s, _, d) in EDGE_RELATIONS.items() if target in (s, d)))
    return relation


def validate_linkteller(block: Mapping[str, Any], data: HeteroData | None, mechanism: Any, model: str | None,
                        target: str) -> tuple[Relation, int, float, int]:
    """Relation, pair count, delta and chunk of `attack.linkteller`, checked (every bad field, one line each)."""
    refusals = Refusals()
    relation: Relation | None = None
    with refusals.check():
        relation = linkteller_relation(block, target)
    with refusals.check():
        refuse_trained_inside(mechanism, "linkteller", "LinkTeller", {"hetero_gap": (
            "privacy=hetero_gap releases one set of noisy forecasts: a query with perturbed inputs would be a new "
            "release (fresh noise: outside its epsilon; the run's noise: cancels in the difference); audit its unit "
            "with attack=canary")})
    with refusals.check():
        if model is not None and model not in QUERYABLE:
            raise ConfigError("model.name", model, "LinkTeller perturbs node features and reads the forecaster's "
                              "answer; this model reads no features (a map of the record); use one of "
                              + ", ".join(QUERYABLE))
    with refusals.check():
        if model is not None and model in QUERYABLE and relation is not None and \
                relation[1] not in relations_read(model, target):
            raise ConfigError("attack.linkteller.relation", relation[1], f"model={model} reads no {relation[1]} tie "
                              f"(eval.target={target}): no influence to measure")
    count, delta, chunk = 0, 0.0, 1
    with refusals.check():
        if relation is not None:
            count = check_pair_count("attack.linkteller.num_pairs", block.get("num_pairs", 500), data, relation)
    with refusals.check():
        delta = check_number("attack.linkteller.delta", block.get("delta", 0.01), low=0.0, low_open=True)
    with refusals.check():
        chunk = int(check_number("attack.linkteller.chunk", block.get("chunk", 32), low=1, integer=True))
    refusals.raise_any()
    assert relation is not None
    return relation, count, delta, chunk


def run_linkteller(block: Mapping[str, Any], run: CityRun) -> dict[str, Any]:
    """LinkTeller on the run's forecaster for one relation: `attack_linkteller_*`."""
    relation, count, delta, chunk = validate_linkteller(block, run.data, run.mechanism, run.model, run.target)
    start = time.perf_counter()
    fitted = fit_forecaster(run.released(), run.model, run.model_cfg, run.train_cfg, run.origins, run.seed,
                            run.target)
    fit_seconds = time.perf_counter() - start
    pairs, labels = relation_pairs(run.data, relation, count, run.generator(11), "attack.linkteller.num_pairs")
    src, _, dst = relation
    read_row = 1 if dst == run.target else 0  # the end whose forecast is read; the other is perturbed
    perturbed_type = (src, dst)[1 - read_row]
    queried, inverse = torch.unique(pairs[1 - read_row], return_inverse=True)
    start = time.perf_counter()
    base = fitted.log_rates([fitted.origin])[0]
    answers = fitted.perturbed_log_rates(perturbed_type, queried, 1.0 + delta, chunk)
    read = pairs[read_row]
    scores = ((answers[inverse, read] - base[read]).abs() / delta).double().numpy()
    y = labels.numpy()
    out: dict[str, Any] = {
        "attack_linkteller_relation": relation[1], "attack_linkteller_perturbed": perturbed_type,
        "attack_linkteller_read": run.target, "attack_linkteller_origin": fitted.origin,
        "attack_linkteller_setting": "transductive", "attack_linkteller_pair_sampling": "balanced",
        "attack_linkteller_nodes": int(queried.numel()), "attack_linkteller_true_edges": int(y.sum()),
        "attack_linkteller_pairs": int(y.size), "attack_linkteller_auroc": auroc(y, scores),
        "attack_linkteller_zero_influence_share": float((scores == 0).mean()),
        "attack_linkteller_fit_seconds": fit_seconds, "attack_linkteller_query_seconds": time.perf_counter() - start}
    out.update(precision_recall_at_density(scores, y))
    return out


# --- link stealing --------------------------------------------------------------------------------------------------

def validate_lsa(block: Mapping[str, Any], data: HeteroData | None, target: str) -> tuple[Relation, list[str], int]:
    """Relation, distances and pair count of `attack.lsa`, checked: both ends of the relation must be forecast."""
    if target != "person":
        raise ConfigError("attack", "lsa", "link stealing compares the forecasts of a tie's two ends: under "
                          "eval.target=place only the public grid joins two forecast nodes; forecast people "
                          "(eval.target=person) to attack knows, or use attack=linkteller for lives_at/frequents")
    refusals = Refusals()
    relation: Relation | None = None
    with refusals.check():
        relation = attack_relation("attack.lsa.relation", block.get("relation", "knows"))
        if relation[0] != relation[2]:
            raise ConfigError("attack.lsa.relation", relation[1], f"joins a {relation[0]} to a {relation[2]}: only "
                              "one end has a forecast to compare; link stealing needs both (knows), attack=linkteller "
                              "takes this relation")
    distances: list[str] = []
    with refusals.check():
        distances = [check_choice("attack.lsa.distances", d, DISTANCES) for d in block.get("distances", DISTANCES)]
        if not distances:
            raise ConfigError("attack.lsa.distances", [], "expected one or more of " + ", ".join(DISTANCES))
    count = 0
    with refusals.check():
        if relation is not None:
            count = check_pair_count("attack.lsa.num_pairs", block.get("num_pairs", 2000), data, relation)
    refusals.raise_any()
    assert relation is not None
    return relation, distances, count


def link_stealing(posteriors: Tensor, pairs: Tensor, labels: Tensor, distances: list[str]) -> dict[str, Any]:
    """Attack-0 on `posteriors` [N, D]: `attack_lsa_auroc_<distance>`, the best AUROC and its distance."""
    scores = distance_aurocs(posteriors.double(), pairs, labels, distances)
    best = max(scores, key=scores.get)
    return {**{f"attack_lsa_auroc_{k}": v for k, v in scores.items()}, "attack_lsa_auroc": scores[best],
            "attack_lsa_best_distance": best, "attack_lsa_pairs": int(labels.numel())}


def run_lsa(block: Mapping[str, Any], run: CityRun) -> dict[str, Any]:
    """Link stealing on the run's released forecasts for one relation: `attack_lsa_*`."""
    relation, distances, count = validate_lsa(block, run.data, run.target)
    assert run.forecast is not None, "link stealing reads the run's forecast"
    pairs, labels = relation_pairs(run.data, relation, count, run.generator(1), "attack.lsa.num_pairs")
    out = link_stealing(run.forecast.scores.T, pairs, labels, distances)
    return {"attack_lsa_relation": relation[1], "attack_lsa_posterior": "forecast rates at the run's origins",
            "attack_lsa_origins": list(run.forecast.origins), **out}
