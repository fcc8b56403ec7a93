"""The pipeline's path for the city (data=synthetic_city): its checks, and a run of a place-level forecaster.

A city run forecasts, at each of the latest `eval.origins` periods t, every place's incident count of
period t + 1 from what was recorded up to t (`gnnrisk.train.city_forecast`), and scores the forecasts
against the truth (every incident, the true rate) and against the record (`gnnrisk.train.hotspot_metrics`).
No private mechanism and no explain, attack or audit stage runs on the city yet: each is refused in one
line before anything is generated or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, Refusals, check_number
from gnnrisk.models import CITY_MODELS, validate_model
from gnnrisk.models.hetero import HETERO_MODELS
from gnnrisk.train.city_forecast import PlaceForecast, check_origins, forecast_places, train_config
from gnnrisk.train.hotspot_metrics import score_forecast
from gnnrisk.utils.files import write_text_atomic

FORECAST_FILE = "forecast.csv"
STAGES = ("explain", "attack", "audit")


def city_origins(eval_cfg: Any, num_periods: int, model: str) -> list[int]:
    """The latest `eval.origins` origins t (each forecasting t + 1), checked against the city's periods."""
    first = 1 if model in HETERO_MODELS else 0  # a GNN trains on an origin before the first it is scored on
    most = num_periods - 1 - first
    count = (eval_cfg or {}).get("origins", 3)
    check_number("eval.origins", count, low=1, high=max(most, 1), integer=True)
    if most < 1:
        raise ConfigError("data.periods", num_periods, f"model={model} needs at least {2 + first} periods")
    return check_origins(list(range(num_periods - 1 - int(count), num_periods - 1)), num_periods, first)


def validate_city_run(cfg: DictConfig, data: HeteroData) -> None:
    """Refuse what cannot run on the city, every bad field at once: model, mechanism, stages, train and eval keys."""
    name = cfg.model.name
    refusals = Refusals()
    with refusals.check():
        if name not in CITY_MODELS:
            raise ConfigError("model.name", name, "not a forecaster for the city (data=synthetic_city); "
                              "available: " + ", ".join(CITY_MODELS))
        validate_model(cfg.model)
    with refusals.check():
        if cfg.privacy.name != "none":
            raise ConfigError("privacy.name", cfg.privacy.name, "no private mechanism runs on the city's "
                              "heterogeneous graph yet; available: none")
    for group in STAGES:
        stage = cfg.get(group)
        if stage is not None and stage.get("name", "none") != "none":
            with refusals.check():
                raise ConfigError(group, stage.name, "not available on the city (data=synthetic_city); "
                                  "available: none")
    with refusals.check():
        train_config(cfg.train)
    if name in CITY_MODELS:
        with refusals.check():
            city_origins(cfg.get("eval"), int(data.num_periods), name)
    refusals.raise_any()


def city_model_config(cfg: DictConfig) -> dict[str, Any]:
    """The model group as a plain dict (the forecasters take a mapping)."""
    return {str(k): v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()}


def write_forecast(run_dir: Path, forecast: PlaceForecast, data: HeteroData) -> None:
    """forecast.csv: one row per origin and place, the score and the place's grid position."""
    origins, places = len(forecast.origins), data["place"].num_nodes
    pos = data["place"].pos.long().cpu()
    table = pd.DataFrame({
        "origin": torch.tensor(forecast.origins).repeat_interleave(places).numpy(),
        "period": (torch.tensor(forecast.origins) + 1).repeat_interleave(places).numpy(),
        "place": torch.arange(places).repeat(origins).numpy(),
        "row": pos[:, 0].repeat(origins).numpy(), "col": pos[:, 1].repeat(origins).numpy(),
        "score": forecast.scores.reshape(-1).numpy(),
    })
    write_text_atomic(run_dir / FORECAST_FILE, table.to_csv(index=False))


def run_city(cfg: DictConfig, data: HeteroData, seed: int, run_dir: Path) -> tuple[dict[str, Any], PlaceForecast]:
    """Forecast and score the city's places at the latest origins; write forecast.csv; return (metrics, forecast)."""
    name = cfg.model.name
    origins = city_origins(cfg.get("eval"), int(data.num_periods), name)
    forecast = forecast_places(data, name, city_model_config(cfg), cfg.train, origins, seed)
    incidents = data["incident"]
    metrics: dict[str, Any] = {
        "num_people": int(data["person"].num_nodes), "num_places": int(data["place"].num_nodes),
        "num_incidents": int(incidents.num_nodes), "recorded_share": float(incidents.recorded.float().mean()),
        "periods": int(data.num_periods), "forecast_origins": origins, "train_seconds": forecast.seconds,
        **score_forecast(forecast, data),
    }
    write_forecast(run_dir, forecast, data)
    return metrics, forecast
