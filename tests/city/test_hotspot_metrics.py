"""Hotspot metrics against hand-computed cases: hit rate, PAI, shared ties, AUROC, Spearman, score_forecast."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError
from gnnrisk.train.city_forecast import CityForecast
from gnnrisk.train.hotspot_metrics import (
    auroc,
    flag_weights,
    hit_rate,
    pai,
    score_forecast,
    spearman,
)


def _t(rows: list[list[float]]) -> torch.Tensor:
    """A float64 tensor [O, P]."""
    return torch.tensor(rows, dtype=torch.float64)


def test_hit_rate_and_pai_by_hand() -> None:
    """Top-m places by score, m = max(1, floor(k P / 100)); PAI divides by m / P."""
    scores, counts = _t([[4, 3, 2, 1]]), _t([[1, 0, 2, 1]])
    assert hit_rate(scores, counts, 25).item() == pytest.approx(1 / 4)  # place 0: 1 of 4 incidents
    assert pai(scores, counts, 25).item() == pytest.approx((1 / 4) / (1 / 4))
    assert hit_rate(scores, counts, 75).item() == pytest.approx(3 / 4)  # places 0, 1, 2
    assert pai(scores, counts, 75).item() == pytest.approx((3 / 4) / (3 / 4))
    assert hit_rate(scores, counts, 100).item() == pytest.approx(1.0)
    # 5% of 4 places floors to none: one place is flagged all the same
    assert hit_rate(scores, counts, 5).item() == pytest.approx(1 / 4)
    assert pai(scores, counts, 5).item() == pytest.approx(1.0)
    # two origins at once, the second with no incident: NaN there
    two = hit_rate(_t([[4, 3, 2, 1], [1, 2, 3, 4]]), _t([[1, 0, 2, 1], [0, 0, 0, 0]]), 50)
    assert two[0].item() == pytest.approx(1 / 4) and math.isnan(two[1].item())


def test_ties_are_shared() -> None:
    """Places tied at the cut are flagged fractionally: the hit rate averaged over every order of them."""
    w = flag_weights(_t([[3, 1, 1, 0]]), 50)  # m = 2: place 0, then one of the two tied places
    assert w.tolist() == [[1.0, 0.5, 0.5, 0.0]]
    assert hit_rate(_t([[3, 1, 1, 0]]), _t([[0, 2, 0, 2]]), 50).item() == pytest.approx((0 + 0.5 * 2) / 4)
    flat = hit_rate(_t([[1, 1, 1, 1]]), _t([[1, 0, 2, 1]]), 50)  # a constant forecast hits k% on average
    assert flat.item() == pytest.approx(0.5)
    # ids do not matter: permuting places permutes nothing in the result
    perm = torch.tensor([2, 0, 3, 1])
    assert hit_rate(_t([[3, 1, 1, 0]])[:, perm], _t([[0, 2, 0, 2]])[:, perm], 50).item() == pytest.approx(0.25)


def test_auroc_and_spearman_by_hand() -> None:
    """AUROC as the share of (positive, negative) pairs ordered right, ties one half; Spearman on mid-ranks."""
    assert auroc(_t([[0.9, 0.8, 0.3, 0.1]]), torch.tensor([[1, 0, 1, 0]])).item() == pytest.approx(3 / 4)
    assert auroc(_t([[1, 1, 0, 0]]), torch.tensor([[1, 0, 1, 0]])).item() == pytest.approx(2 / 4)
    assert math.isnan(auroc(_t([[1, 2, 3]]), torch.tensor([[1, 1, 1]])).item())
    assert spearman(_t([[1, 2, 3, 4]]), _t([[10, 20, 30, 45]])).item() == pytest.approx(1.0)
    assert spearman(_t([[1, 2, 3, 4]]), _t([[4, 3, 2, 1]])).item() == pytest.approx(-1.0)
    # mid-ranks: x = 1, 2, 2, 3 -> ranks 1, 2.5, 2.5, 4 against 1, 2, 3, 4: r = 4.5 / sqrt(4.5 * 5)
    assert spearman(_t([[1, 2, 2, 3]]), _t([[1, 2, 3, 4]])).item() == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(spearman(_t([[1, 1, 1]]), _t([[1, 2, 3]])).item())


def _toy() -> HeteroData:
    """Four places, three periods; period 1: incidents at places 0 (x2, one recorded), 2 (recorded)."""
    data = HeteroData()
    data.num_periods, data.period_days, data.grid_size = 3, 30.0, 2
    data["place"].num_nodes = 4
    data["place"].rate = torch.tensor([[0.1, 2.0, 0.5], [0.1, 0.1, 0.5], [0.1, 1.0, 0.5], [0.1, 0.5, 0.5]])
    data.group_names = ["majority", "minority"]
    data["place"].resident_share = torch.tensor([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    inc = data["incident"]
    inc.num_nodes = 4
    inc.period = torch.tensor([1, 1, 1, 0])
    inc.recorded = torch.tensor([True, False, True, True])
    inc.group = torch.tensor([0, 1, 1, 0])
    data["incident", "occurred_at", "place"].edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 2, 3]])
    return data


def test_score_forecast_by_hand() -> None:
    """Origin 0 forecasts period 1: truth counts 2, 0, 1, 0; recorded 1, 0, 1, 0; rate 2, .1, 1, .5."""
    forecast = CityForecast(scores=torch.tensor([[0.1, 0.9, 0.8, 0.2]]), origins=[0], model="toy")
    out = score_forecast(forecast, _toy(), ks=[25, 50])
    assert out["hit_rate_true_at_25"] == pytest.approx(0.0)  # flags place 1
    assert out["hit_rate_true_at_50"] == pytest.approx(1 / 3)  # places 1, 2: one of three incidents
    assert out["pai_true_at_50"] == pytest.approx((1 / 3) / 0.5)
    assert out["hit_rate_recorded_at_50"] == pytest.approx(1 / 2)
    assert out["hit_rate_rate_at_50"] == pytest.approx(1.1 / 3.6)
    # labels (any incident) 1, 0, 1, 0: positives score .1 and .8, negatives .9 and .2 -> 1 of 4 pairs
    assert out["auroc_true"] == pytest.approx(1 / 4)
    assert out["auroc_recorded"] == pytest.approx(1 / 4)
    # at 5% of 4 places one is flagged (place 1): its residents are 75% minority; the minority is involved in
    # 2 of period 1's 3 incidents and in 1 of its 2 recorded ones
    assert out["flagged_share_minority_at_5"] == pytest.approx(0.75)
    assert out["true_share_minority"] == pytest.approx(2 / 3)
    assert out["recorded_share_minority"] == pytest.approx(1 / 2)
    assert out["flag_disparity_minority_at_5"] == pytest.approx(0.75 - 2 / 3)
    # ranks of scores 1, 4, 3, 2 against rate ranks 4, 1, 3, 2
    assert out["spearman_true_rate"] == pytest.approx(1 - 6 * (9 + 9 + 0 + 0) / (4 * 15))
    assert set(out) >= {"hit_rate_true_at_25", "pai_recorded_at_25", "pai_rate_at_50", "spearman_true_count",
                        "spearman_recorded"}


@pytest.mark.parametrize("ks", [[0], [101], [-5], [], "5", [5, float("nan")]])
def test_bad_k_is_refused(ks: object) -> None:
    """k must be a percentage in (0, 100]."""
    forecast = CityForecast(scores=torch.ones(1, 4), origins=[0], model="toy")
    with pytest.raises(ConfigError) as err:
        score_forecast(forecast, _toy(), ks=ks)  # type: ignore[arg-type]
    assert err.value.field == "eval.hit_rate_k"


def test_origin_without_next_period_is_refused() -> None:
    """The last period has no next period to score."""
    forecast = CityForecast(scores=torch.ones(1, 4), origins=[2], model="toy")
    with pytest.raises(ConfigError) as err:
        score_forecast(forecast, _toy())
    assert err.value.field == "eval.origins"
