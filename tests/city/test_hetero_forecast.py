"""Heterogeneous GNN forecasters and the entry point: they train and run, see only the record, are seeded, refuse bad input."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import HeteroData

from gnnrisk.data.city import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.models.hetero import HETERO_MODELS
from gnnrisk.train.city_forecast import MODEL_NAMES, Record, forecast_city, snapshot

GNNS = ["hetero_sage", "hetero_gat", "hetero_gcn", "hgt", "rgcn"]
FAST = {"epochs": 4, "patience": 2}


@pytest.fixture(scope="module")
def village() -> HeteroData:
    """600 people on a 3 x 3 grid, 6 periods."""
    return generate_city({"num_people": 600, "periods": 6}, seed=0)


def test_registry_names() -> None:
    """The five GNNs, the place and person baselines and the recurrent models, by the names the pipeline uses."""
    assert sorted(HETERO_MODELS) == sorted(GNNS)
    assert set(MODEL_NAMES) == {*GNNS, "retro_hotspot", "pro_hotspot", "sepp", "person_history", "network_exposure",
                                "gconv_gru", "gconv_lstm", "lstm"}


@pytest.mark.parametrize("name", GNNS)
def test_each_gnn_trains_and_forecasts(village: HeteroData, name: str) -> None:
    """One fresh model per origin, a finite positive forecast per place, a training curve per origin."""
    forecast = forecast_city(village, name, {"hidden_channels": 8}, {"epochs": 6, "val_share": 0.0}, [3, 4], 0)
    assert forecast.scores.shape == (2, 9) and forecast.origins == [3, 4] and forecast.model == name
    assert torch.isfinite(forecast.scores).all() and (forecast.scores > 0).all()
    assert [(row["origin"], row["epoch"]) for row in forecast.history] == [(t, e) for t in (3, 4) for e in range(1, 7)]
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in forecast.history)


def test_early_stopping_and_refit_once(village: HeteroData) -> None:
    """Validation on held-out places' targets is logged; refit=once fits one model for every origin."""
    forecast = forecast_city(village, "hetero_sage", {"hidden_channels": 8},
                               {"epochs": 5, "refit": "once", "val_share": 0.3}, [3, 4], 0)
    assert {row["origin"] for row in forecast.history} == {3}
    assert all("val_loss" in row for row in forecast.history)


def _visible_only(data: HeteroData, origin: int) -> HeteroData:
    """A copy holding only the recorded incidents of periods <= origin, the truth scrambled."""
    out = data.clone()
    inc = data["incident"]
    keep = inc.recorded.bool() & (inc.period <= origin)
    new_id = torch.full((inc.num_nodes,), -1, dtype=torch.long)
    new_id[keep] = torch.arange(int(keep.sum()))
    for key in ("time", "period", "parent", "cause", "group", "recorded", "p_record"):
        out["incident"][key] = inc[key][keep]
    out["incident"].num_nodes = int(keep.sum())
    for src, rel, dst in data.edge_types:
        if "incident" in (src, dst):
            end = 0 if src == "incident" else 1
            ei = data[src, rel, dst].edge_index
            ei = ei[:, keep[ei[end]]].clone()
            ei[end] = new_id[ei[end]]
            out[src, rel, dst].edge_index = ei
    gen = torch.Generator().manual_seed(1)
    for node, key in (("place", "rate"), ("place", "background_rate"), ("place", "patrol"), ("person", "rate"),
                      ("person", "risk"), ("place", "territory"), ("person", "group"), ("person", "community")):
        value = out[node][key]
        out[node][key] = torch.randperm(value.numel(), generator=gen).reshape(value.shape).to(value.dtype)
    return out


@pytest.mark.parametrize("name", ["retro_hotspot", "pro_hotspot", "sepp", *GNNS])
def test_no_leak_of_unrecorded_or_future_incidents(village: HeteroData, name: str) -> None:
    """The forecast at origin t is the same once the unrecorded and later incidents and the truth are gone."""
    cfg = {"hidden_channels": 8} if name in GNNS else {}
    full = forecast_city(village, name, cfg, FAST, [3], seed=0)
    seen = forecast_city(_visible_only(village, 3), name, cfg, FAST, [3], seed=0)
    torch.testing.assert_close(full.scores, seen.scores)


def test_snapshot_holds_the_record_up_to_the_origin(village: HeteroData) -> None:
    """Incident nodes: the recorded incidents of periods <= s, linked to their place and person only."""
    record = Record(village)
    inc = village["incident"]
    for s in (0, 2, 4):
        snap = snapshot(village, record, s, lags=3)
        m = int((inc.recorded & (inc.period <= s)).sum())
        assert snap["incident"].num_nodes == m and snap["incident"].x.shape == (m, 2)
        assert (snap["incident"].x[:, 0] > 0).all()  # ages at the end of s: every incident happened before
        assert snap["incident", "occurred_at", "place"].edge_index.size(1) == m
        assert snap["person", "involved_in", "incident"].edge_index.size(1) == m
        assert snap.metadata() == snapshot(village, record, 5, lags=3).metadata()
        assert torch.equal(snap["place"].x[:, 2], record.place_counts[:, s].log1p())  # the last of 3 lags


@pytest.mark.parametrize("name", ["hetero_gat", "hgt"])
def test_deterministic_for_a_seed(village: HeteroData, name: str) -> None:
    """Same seed, same forecast and curve on CPU (dropout on); another seed, another forecast."""
    cfg = {"hidden_channels": 8, "dropout": 0.2}
    a = forecast_city(village, name, cfg, FAST, [3, 4], seed=3)
    b = forecast_city(village, name, cfg, FAST, [3, 4], seed=3)
    c = forecast_city(village, name, cfg, FAST, [3, 4], seed=4)
    assert torch.equal(a.scores, b.scores) and a.history == b.history
    assert not torch.equal(a.scores, c.scores)


@pytest.mark.parametrize("name, model_cfg, train_cfg, origins, field", [
    ("hetero_mlp", {}, {}, [3], "model.name"),
    ("sepp", {"name": "retro_hotspot"}, {}, [3], "model.name"),
    ("sepp", {}, {}, [5], "eval.origins"),  # period 6 does not exist
    ("sepp", {}, {}, [-1], "eval.origins"),
    ("sepp", {}, {}, [], "eval.origins"),
    ("sepp", {}, {}, [2, 2], "eval.origins"),
    ("sepp", {}, {}, [2.5], "eval.origins"),
    ("hgt", {}, {}, [0], "eval.origins"),  # a GNN needs a training origin before
    ("hgt", {"heads": 3}, {}, [3], "model.heads"),
    ("rgcn", {"heads": 2}, {}, [3], "model.heads"),
    ("hetero_sage", {}, {"refit": "never"}, [3], "train.refit"),
    ("hetero_sage", {}, {"epochs": 0}, [3], "train.epochs"),
])
def test_bad_input_names_the_field(village: HeteroData, name: str, model_cfg: dict, train_cfg: dict,
                                   origins: list, field: str) -> None:
    """Unknown models, settings and origins out of range are refused with the field they came from."""
    with pytest.raises(ConfigError) as err:
        forecast_city(village, name, model_cfg, train_cfg, origins, seed=0)
    assert err.value.field == field
