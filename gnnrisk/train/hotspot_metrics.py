"""The field's metrics for the city's forecasts: hit rate and PAI at k% of units, AUROC, AUPRC, rank correlation.

The units are the forecast's target: places (hotspot forecasts) or people (person-based risk; an
incident counts for the person involved). Below, "places" reads "units" for people.

Hit rate at k%: flag the m = max(1, floor(k P / 100)) highest-scoring places (open_cp's `top_slice`
takes floor(k P / 100) and may flag none; we flag at least one); the hit rate is the share of the
period's incidents that fall in flagged places, and PAI (Chainey et al. 2008) = hit rate / (m / P).
Ties at the cut are shared: the places tied with the m-th score are flagged fractionally, each by
(places still needed) / (places tied), which is the hit rate averaged over every order of the tied
places; deterministic, and blind to place ids (which are shuffled, so open_cp's "first in natural
order" would be an arbitrary pick). Ties in AUROC and Spearman get mid-ranks.

Three yardsticks per origin t, each for period t + 1: `true` (every incident, recorded or not),
`rate` (the true expected count, `place.rate[:, t + 1]` or `person.rate[:, t + 1]`, as "incidents"),
`recorded` (the record). Per group (`group_shares`): the share of the flagged units at 5% that are the
group's (people) or its residents (places), against the group's share of next period's incidents,
every one and recorded: the static face of the patrol feedback loop. AUROC and AUPRC (average precision, sklearn's step-wise definition) score
units with at least one incident against the rest.
An origin where a yardstick is undefined (no incident, one class, a constant) is left out of the
mean over origins; NaN if every origin is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score
from torch import Tensor
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.train.city_forecast import CityForecast, check_origins

DEFAULT_KS: tuple[float, ...] = (1, 5, 10, 20)
FLAG_K = 5.0  # the cut-off of the per-group flagged shares


def check_ks(ks: Any) -> list[float]:
    """`ks` as a non-empty list of percentages in (0, 100], else a ConfigError naming `eval.hit_rate_k`."""
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__len__") or len(ks) == 0:
        raise ConfigError("eval.hit_rate_k", ks, "expected a non-empty list of percentages of places in (0, 100]")
    return [check_number("eval.hit_rate_k", k, low=0.0, high=100.0, low_open=True) for k in ks]


def flag_weights(scores: Tensor, k: float) -> Tensor:
    """Per (origin, place) share flagged at k% [O, P]: 1 above the cut, fractional among ties at it."""
    num = scores.size(1)
    m = max(1, math.floor(k * num / 100 + 1e-9))
    cut = scores.sort(dim=1, descending=True).values[:, m - 1: m]
    above, tied = (scores > cut).double(), (scores == cut).double()
    need = m - above.sum(1, keepdim=True)
    return above + tied * need / tied.sum(1, keepdim=True)


def hit_rate(scores: Tensor, counts: Tensor, k: float) -> Tensor:
    """Share of each origin's counts [O, P] in its flagged places [O]; NaN where the counts sum to 0."""
    counts = counts.double()
    total = counts.sum(1)
    hits = (flag_weights(scores, k) * counts).sum(1)
    return torch.where(total > 0, hits / total.clamp(min=1e-300), torch.full_like(total, float("nan")))


def pai(scores: Tensor, counts: Tensor, k: float) -> Tensor:
    """Predictive accuracy index per origin: hit rate / share of places flagged."""
    num = scores.size(1)
    return hit_rate(scores, counts, k) / (max(1, math.floor(k * num / 100 + 1e-9)) / num)


def auroc(scores: Tensor, labels: Tensor) -> Tensor:
    """AUROC per origin (Mann-Whitney with mid-ranks) of scores [O, P] for boolean labels; NaN for one class."""
    ranks = rankdata(scores.double().numpy(), axis=1)
    pos = labels.bool().numpy()
    n_pos, n_neg = pos.sum(1), (~pos).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.from_numpy(np.where((n_pos > 0) & (n_neg > 0), out, np.nan))


def spearman(scores: Tensor, values: Tensor) -> Tensor:
    """Spearman rank correlation per origin (mid-ranks); NaN where either side is constant."""
    a = rankdata(scores.double().numpy(), axis=1)
    b = rankdata(values.double().numpy(), axis=1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return torch.from_numpy(np.where(den > 0, (a * b).sum(1) / den, np.nan))


def average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """Average precision per origin of scores [O, N] for boolean labels; NaN where there is no positive."""
    out = [average_precision_score(y, s) if y.any() else float("nan")
           for s, y in zip(scores.double().numpy(), labels.bool().numpy())]  # one per origin
    return torch.tensor(out, dtype=torch.float64)


def unit_of_incident(data: HeteroData, target: str = "place") -> Tensor:
    """Each incident's place, or the person involved in it [M]."""
    rel, side = (("incident", "occurred_at", "place"), 0) if target == "place" else (("person", "involved_in",
                                                                                      "incident"), 1)
    ei = data[rel].edge_index.cpu()
    unit = torch.empty(data["incident"].num_nodes, dtype=torch.long)
    unit[ei[side]] = ei[1 - side]
    return unit


def next_period_truth(data: HeteroData, origins: Sequence[int], target: str = "place") -> dict[str, Tensor]:
    """Per origin t, for period t + 1 [O, N]: every incident (`true`), the true rate, the recorded incidents."""
    inc = data["incident"]
    p, k = data[target].num_nodes, int(data.num_periods)
    key = unit_of_incident(data, target) * k + inc.period.cpu()
    every = torch.bincount(key, minlength=p * k).reshape(p, k)
    recorded = torch.bincount(key[inc.recorded.cpu().bool()], minlength=p * k).reshape(p, k)
    nxt = torch.tensor([t + 1 for t in origins])
    return {"true": every[:, nxt].T.double(), "rate": data[target].rate.cpu()[:, nxt].T.double(),
            "recorded": recorded[:, nxt].T.double()}


def group_shares(scores: Tensor, data: HeteroData, origins: Sequence[int], target: str, k: float) -> dict[str, float]:
    """Per group, averaged over origins: the flagged share at k% against the group's share of next period's incidents.

    Flagged share: people, the share of the flagged people in the group; places, the flagged places'
    residents in the group (weighted by flag). True and recorded shares: of the incidents of t + 1
    (every one, or the recorded ones) whose person involved is in the group.
    """
    flags = flag_weights(scores, k)  # [O, N]
    if target == "person":
        member = F.one_hot(data["person"].group.cpu().long(), len(data.group_names)).double()  # [N, G]
    else:
        member = data["place"].resident_share.cpu().double()
    flagged = (flags @ member) / (flags @ member).sum(1, keepdim=True)  # [O, G]
    inc = data["incident"]
    period, group = inc.period.cpu(), inc.group.cpu().long()
    out: dict[str, float] = {}
    for j, name in enumerate(data.group_names):  # a few groups
        rows = {"flagged": flagged[:, j]}
        for kind, keep in (("true", torch.ones_like(inc.recorded.cpu().bool())), ("recorded", inc.recorded.cpu().bool())):
            share = []
            for t in origins:  # a handful of origins
                sel = keep & (period == t + 1)
                share.append(float((group[sel] == j).double().mean()) if sel.any() else float("nan"))
            rows[kind] = torch.tensor(share, dtype=torch.float64)
        out[f"flagged_share_{name}_at_{k:g}"] = _mean(rows["flagged"])
        out[f"true_share_{name}"] = _mean(rows["true"])
        out[f"recorded_share_{name}"] = _mean(rows["recorded"])
        out[f"flag_disparity_{name}_at_{k:g}"] = _mean(rows["flagged"] - rows["true"])
    return out


def _mean(values: Tensor) -> float:
    """Mean over origins, leaving out undefined ones (NaN if all are)."""
    ok = ~torch.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def score_forecast(forecast: CityForecast, data: HeteroData, ks: Sequence[float] = DEFAULT_KS) -> dict[str, float]:
    """Hit rates, PAIs, AUROCs and rank correlations of `forecast`, averaged over its origins (a flat dict)."""
    ks = check_ks(ks)
    origins = check_origins(forecast.origins, int(data.num_periods))
    scores = forecast.scores.detach().double().cpu()
    units = data[forecast.target].num_nodes
    if scores.shape != (len(origins), units):
        raise ValueError(f"scores of shape {tuple(scores.shape)}, expected ({len(origins)}, {units})")
    truth = next_period_truth(data, origins, forecast.target)
    out: dict[str, float] = {}
    for k in ks:  # a handful of cut-offs
        for name, counts in truth.items():
            out[f"hit_rate_{name}_at_{k:g}"] = _mean(hit_rate(scores, counts, k))
            out[f"pai_{name}_at_{k:g}"] = _mean(pai(scores, counts, k))
    out["auroc_true"] = _mean(auroc(scores, truth["true"] > 0))
    out["auroc_recorded"] = _mean(auroc(scores, truth["recorded"] > 0))
    out["auprc_true"] = _mean(average_precision(scores, truth["true"] > 0))
    out["auprc_recorded"] = _mean(average_precision(scores, truth["recorded"] > 0))
    out["spearman_true_rate"] = _mean(spearman(scores, truth["rate"]))
    out["spearman_true_count"] = _mean(spearman(scores, truth["true"]))
    out["spearman_recorded"] = _mean(spearman(scores, truth["recorded"]))
    out.update(group_shares(scores, data, origins, forecast.target, FLAG_K))
    return out
