"""The mechanisms of a city run, looked up by `privacy.name`: each forecasts on the city and reports what it spent.

- `none`: the forecasters on the true city (no formal privacy).
- `edgerand`, `lapgraph` (unit `edge:<privacy.relation>`): one relation of the city released by graph
  perturbation (`gnnrisk.privacy.city.perturb`); every forecaster, the patrol loop included, reads the
  released city only, so everything they compute is post-processing of that release. The epsilon covers
  the released relation and nothing else of the city (people, other relations, incidents, the record).
- `hetero_gap` (unit `privacy.unit`: `edge:<relation>`, `person` or `incident`): aggregation perturbation
  per relation with a head trained on the noisy aggregates (`gnnrisk.privacy.city.aggregation`); the
  epsilon covers the forecasts (the released model's outputs).
- `hetero_dpsgd` (unit `privacy.unit`: `person` or `incident`): node-level DP-SGD of hetero_sage, each place's loss
  over its K-hop computation graph on the capped city one example, the group one unit can change bounded from the
  caps (`gnnrisk.privacy.city.dpsgd`); the epsilon covers the trained weights, not the forecasts, which apply them
  to each origin's un-noised snapshot (`forecasts_covered: False`).

Every mechanism is built from the `privacy` group and checked against the model and target before
anything is trained; its `privacy` dict (flat metrics.json fields) names the unit and what it protects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig
from torch_geometric.data import HeteroData

from gnnrisk.errors import ConfigError, Refusals, check_number
from gnnrisk.models.hetero import HETERO_MODELS
from gnnrisk.privacy.city.units import EDGE_RELATIONS, Unit, parse_unit
from gnnrisk.train.city_forecast import CityForecast, forecast_city

NOT_PRIVATE = {"mechanism": "none", "privacy_unit": None, "epsilon": None, "delta": None}


def relations_read(model: str, target: str) -> set[str]:
    """The relations (by name) that a city forecaster reads: the GNNs all, the others their one graph or none."""
    if model in HETERO_MODELS:
        return {rel for _, rel, _ in _ALL_RELATIONS}
    if model == "network_exposure" or (model in ("gconv_gru", "gconv_lstm") and target == "person"):
        return {"knows"}
    if model in ("gconv_gru", "gconv_lstm"):
        return {"adjacent"}
    return set()


_ALL_RELATIONS = (*EDGE_RELATIONS.values(), ("incident", "occurred_at", "place"),
                  ("person", "involved_in", "incident"), ("place", "adjacent", "place"))


class CityMechanism:
    """A way of forecasting on the city, private or not; subclasses set `name`, `releases` and `forecast`."""

    name = "none"
    releases: str | None = None  # what the epsilon covers: "graph" (the released relation), "model" (the model
    # and its forecasts), "weights" (the trained weights, not forecasts read from private snapshots), None
    refits_in_loop = False  # whether each refit of the patrol loop is a new release, composed by the accountant

    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = cfg
        self.unit: Unit | None = None

    def check(self, model: str, target: str) -> None:
        """Refuse (ConfigError) a model or target this mechanism cannot run; before any training."""

    def release(self, data: HeteroData, seed: int) -> tuple[HeteroData, dict[str, Any]]:
        """The city every forecaster of the run reads, and the privacy spent on it."""
        return data, dict(NOT_PRIVATE)

    def forecast(self, data: HeteroData, model: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                 origins: list[int], seed: int, target: str, also: Sequence[list[int]] = ()
                 ) -> tuple[CityForecast, dict[str, Any]]:
        """Forecast at `origins` and return the forecast with the run's privacy fields; `also`: the origins of the
        patrol loop's refits, which a mechanism with `refits_in_loop` composes into the returned epsilon."""
        released, privacy = self.release(data, seed)
        return forecast_city(released, model, model_cfg, train_cfg, origins, seed, target), privacy


class NonPrivateCity(CityMechanism):
    """The forecasters on the true city."""


class CityGraphPerturbation(CityMechanism):
    """EdgeRand or LapGraph on one relation (`privacy.relation`); unit edge:<relation>."""

    releases = "graph"

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        # the homogeneous class validates the shared keys
        from gnnrisk.privacy import mechanism_class

        self.inner = mechanism_class(self.name)(cfg if isinstance(cfg, DictConfig) else DictConfig(dict(cfg)))
        relation = cfg.get("relation", "knows")
        self.unit = parse_unit(f"edge:{relation}" if isinstance(relation, str) else relation, ("edge",),
                               field="privacy.relation", mechanism=self.name)

    def check(self, model: str, target: str) -> None:
        """The model must read the released relation: perturbing one it ignores is pointless."""
        name = self.unit.relation[1]
        if name not in relations_read(model, target):
            readers = [m for m in (*HETERO_MODELS, "network_exposure", "gconv_gru", "gconv_lstm")
                       if name in relations_read(m, target)]
            raise ConfigError("model.name", model, f"reads no {name} ties (eval.target={target}): perturbing them "
                              f"with privacy={self.name} is pointless; models that read them: " + ", ".join(readers))

    def release(self, data: HeteroData, seed: int) -> tuple[HeteroData, dict[str, Any]]:
        """The city with the relation released; epsilon is the relation's, delta 0."""
        from gnnrisk.privacy.city.perturb import perturb_relation

        released, params = perturb_relation(data, self.unit.relation, self.name, self.inner.epsilon,
                                            self.inner.max_edges, self.inner.rng(seed))
        return released, {"mechanism": self.name, "privacy_unit": str(self.unit),
                          "privacy_unit_detail": self.unit.detail, "epsilon": self.inner.epsilon, "delta": 0.0,
                          **params}

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """The homogeneous mechanism's event: one cell of the relation differs."""
        return self.inner.dp_event(privacy)


class CityEdgeRand(CityGraphPerturbation):
    """EdgeRand on one relation of the city."""

    name = "edgerand"


class CityLapGraph(CityGraphPerturbation):
    """LapGraph on one relation of the city."""

    name = "lapgraph"


def epsilon_delta(cfg: Mapping[str, Any], refusals: Refusals) -> tuple[float, float | None]:
    """`privacy.epsilon` (inf allowed: no noise) and `privacy.delta` (None: the mechanism's default), each refusal
    kept in `refusals`."""
    epsilon, delta = math.inf, None
    with refusals.check():
        eps = cfg.get("epsilon")
        epsilon = math.inf if eps in (math.inf, "inf", ".inf") else check_number(
            "privacy.epsilon", eps, low=0.0, low_open=True)
    with refusals.check():
        given = cfg.get("delta")
        delta = None if given is None else check_number("privacy.delta", given, low=0.0, high=1.0, low_open=True,
                                                        high_open=True)
    return epsilon, delta


class HeteroGap(CityMechanism):
    """Aggregation perturbation per relation (GAP on typed relations) at unit `privacy.unit`."""

    name = "hetero_gap"
    releases = "model"
    refits_in_loop = True

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        from gnnrisk.privacy.city.aggregation import hetero_gap_settings

        refusals = Refusals()
        with refusals.check():
            self.unit = parse_unit(cfg.get("unit"), mechanism=self.name)
        self.epsilon, self.delta = epsilon_delta(cfg, refusals)
        with refusals.check():
            if "lags" in cfg:
                raise ConfigError("privacy.lags", cfg.get("lags"), "the snapshot's lags are the model's: set "
                                  "model.lags")
        with refusals.check():
            self.settings = hetero_gap_settings({k: v for k, v in dict(cfg).items()
                                                 if k not in ("name", "unit", "epsilon", "delta", "diagnostics")})
        refusals.raise_any()

    def check(self, model: str, target: str) -> None:
        """GAP's own aggregation and head replace the forecaster: model must name a heterogeneous GNN."""
        if model not in HETERO_MODELS:
            raise ConfigError("model.name", model, f"privacy={self.name} builds its own aggregation and head on the "
                              "city's typed relations; choose one of " + ", ".join(HETERO_MODELS)
                              + " (its lags are read)")
        if target == "person" and self.unit is not None and self.unit.kind == "person":
            raise ConfigError("eval.target", target, "a forecast row per person would tell who is in the city, "
                              "which the person unit hides: forecast places, or use privacy.unit=incident or "
                              "edge:<relation>")

    def forecast(self, data: HeteroData, model: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                 origins: list[int], seed: int, target: str, also: Sequence[list[int]] = ()
                 ) -> tuple[CityForecast, dict[str, Any]]:
        """The forecast under the unit's DP, and the epsilon spent by it and by the loop's refits at `also`."""
        from gnnrisk.privacy.city.aggregation import forecast_hetero_gap

        settings = {**self.settings, "lags": int(model_cfg.get("lags", 3))}
        return forecast_hetero_gap(data, self.unit, self.epsilon, self.delta, settings, train_cfg, origins, seed,
                                   target, also=also)

    def loop_forecaster(self, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any], seed: int,
                        privacy: Mapping[str, Any]) -> Callable[[HeteroData, int], Any]:
        """The patrol loop's refit at an origin: the same mechanism with the noise the run calibrated for all its
        forecasts (`privacy`), a fresh noise stream per origin; the place scores for origin + 1."""
        from gnnrisk.privacy.city.aggregation import forecast_hetero_gap

        settings = {**self.settings, "lags": int(model_cfg.get("lags", 3))}

        def refit(view: HeteroData, origin: int) -> Any:
            forecast, _ = forecast_hetero_gap(view, self.unit, self.epsilon, self.delta, settings, train_cfg, [origin],
                                              seed, "place", accounted=privacy, stream=origin + 1)
            return forecast.scores[0].double().numpy()

        return refit

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """The run's events for an independent recount."""
        from gnnrisk.privacy.city.aggregation import hetero_gap_dp_event

        return hetero_gap_dp_event(privacy)


class HeteroDpsgd(CityMechanism):
    """Node-level DP-SGD of hetero_sage over each place's computation graph at unit `privacy.unit` (person,
    incident); the patrol loop's refits are not accounted (refused)."""

    name = "hetero_dpsgd"
    releases = "weights"  # the forecasts apply them to un-noised snapshots: written apart (city_run.write_forecast)

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        from gnnrisk.privacy.city.dpsgd import UNITS, hetero_dpsgd_settings

        refusals = Refusals()
        with refusals.check():
            self.unit = parse_unit(cfg.get("unit"), UNITS, mechanism=self.name)
        self.epsilon, self.delta = epsilon_delta(cfg, refusals)
        with refusals.check():
            self.settings = hetero_dpsgd_settings(cfg)
        refusals.raise_any()

    def check(self, model: str, target: str) -> None:
        """The model must be hetero_sage (its per-example gradients are computed exactly) and the target places."""
        from gnnrisk.privacy.city.dpsgd import check_forecaster

        check_forecaster(model, target, self.unit)

    def forecast(self, data: HeteroData, model: str, model_cfg: Mapping[str, Any], train_cfg: Mapping[str, Any],
                 origins: list[int], seed: int, target: str, also: Sequence[list[int]] = ()
                 ) -> tuple[CityForecast, dict[str, Any]]:
        """The forecast under the unit's DP, and the epsilon spent."""
        from gnnrisk.privacy.city.dpsgd import forecast_hetero_dpsgd

        return forecast_hetero_dpsgd(data, self.unit, self.epsilon, self.delta, self.settings, model_cfg, train_cfg,
                                     origins, seed, target, also=also)

    def dp_event(self, privacy: dict[str, Any]) -> Any:
        """The run's steps for an independent recount."""
        from gnnrisk.privacy.city.dpsgd_accounting import hetero_dpsgd_dp_event

        return hetero_dpsgd_dp_event(privacy)


CITY_MECHANISMS: dict[str, type[CityMechanism]] = {
    "none": NonPrivateCity, "edgerand": CityEdgeRand, "lapgraph": CityLapGraph, "hetero_gap": HeteroGap,
    "hetero_dpsgd": HeteroDpsgd}


CITY_ONLY_MECHANISMS = ("hetero_gap", "hetero_dpsgd")  # not in the homogeneous registry: refused there in one line


def build_city_mechanism(cfg: Mapping[str, Any]) -> CityMechanism:
    """The city mechanism `privacy.name` names, its config checked (one-line ConfigError)."""
    name = cfg.get("name", "none")
    if name not in CITY_MECHANISMS:
        raise ConfigError("privacy.name", name, "not a mechanism for the city's typed relations "
                          "(data=synthetic_city); available there: " + ", ".join(CITY_MECHANISMS))
    return CITY_MECHANISMS[name](cfg)
