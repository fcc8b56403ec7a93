"""The search space: `hydra.sweeper.params` and the command line as Optuna distributions and override text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from omegaconf import DictConfig

from gnnrisk.errors import ConfigError

if TYPE_CHECKING:  # optuna is the `tune` extra: imported by the sweeper only, never by a plain run
    from optuna.distributions import BaseDistribution


@dataclass(frozen=True)
class SearchSpace:
    """The sampled parameters (name -> Optuna distribution) and the overrides every trial shares, in order."""

    distributions: dict[str, "BaseDistribution"]
    keys: dict[str, str]            # parameter name -> its override key (with a `+`/`++` prefix if given)
    fixed: list[str]                # overrides that are the same in every trial

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The override list of a trial with these sampled values (the shared ones first)."""
        return self.fixed + [f"{self.keys[name]}={override_value(params[name])}" for name in self.distributions]


def override_value(value: Any) -> str:
    """A sampled value as Hydra override text (`null`, `true`, numbers in full precision, quoted strings)."""
    from hydra.core.override_parser.types import Override

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return Override._get_value_element_as_str(value)


def distribution_of(override: Any, where: str) -> "BaseDistribution":
    """The Optuna distribution of one sweep override: choice -> categorical, integer range -> int with step,
    interval -> float (tag `log`: log scale; tag `int`: integers)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    text = override.input_line.split("=", 1)[-1]
    value = override.value()
    if isinstance(value, ChoiceSweep):
        choices = list(override.sweep_iterator())
        bad = [c for c in choices if not isinstance(c, (str, int, float, bool))]
        if bad or not choices:
            raise ConfigError(where, text, "choice() of numbers, strings or booleans expected (no lists, dicts "
                              "or null)")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(where, text, "an empty range")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)) and value.step > 0:
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return CategoricalDistribution(values)
    if isinstance(value, IntervalSweep):
        unknown = set(value.tags) - {"log", "int"}
        if unknown:
            raise ConfigError(where, text, f"unknown tag(s) {', '.join(sorted(unknown))}: interval() takes the "
                              "tags log and int")
        low, high, log_scale = float(value.start), float(value.end), "log" in value.tags
        if not low < high:
            raise ConfigError(where, text, "interval(low, high) needs low < high")
        if log_scale and low <= 0:
            raise ConfigError(where, text, "tag(log, interval(low, high)) needs low > 0")
        if "int" in value.tags:
            if low != int(low) or high != int(high):
                raise ConfigError(where, text, "tag(int, interval(low, high)) needs integer ends")
            return IntDistribution(int(low), int(high), log=log_scale)
        return FloatDistribution(low, high, log=log_scale)
    raise ConfigError(where, text, "expected choice(...), a,b,c, range(...), interval(...) or "
                      "tag(log, interval(...))")


def parse_search_space(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> SearchSpace:
    """The search space of `hydra.sweeper.params` and the command line (a later key replaces an earlier one).

    Sweep syntax (choice, a,b,c, range, interval, tag(log, ...)) is sampled; a plain value is fixed.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    entries: dict[str, tuple[str, Any, str]] = {}  # name -> (override key, parsed override, error field)
    for key, value in (params or {}).items():
        if isinstance(value, (Mapping, DictConfig, list, tuple)):
            raise ConfigError(f"hydra.sweeper.params.{key}", value, "one search space per dotted key, e.g. "
                              "'model.dropout: interval(0.0, 0.5)' (on the command line give the sweep itself: "
                              "model.dropout='interval(0.0,0.5)')")
    texts = [(f"{k}={'null' if v is None else v}", f"hydra.sweeper.params.{k}") for k, v in (params or {}).items()]
    texts += [(a, None) for a in arguments]
    for text, where in texts:
        try:
            override = parser.parse_override(text)
        except HydraException as err:
            raise ConfigError(where or text.split("=", 1)[0], text.split("=", 1)[-1],
                              " ".join(str(err).split())) from None
        name = override.key_or_group
        entries.pop(name, None)  # keep the order of the last setting
        entries[name] = (override.get_key_element(), override, where or name)
    distributions, keys, fixed = {}, {}, []
    for name, (key, override, where) in entries.items():
        if override.is_sweep_override():
            distributions[name] = distribution_of(override, where)
            keys[name] = key
        else:
            fixed.append(override.input_line)  # as written (`~key` deletions included)
    if not distributions:
        raise ConfigError("hydra.sweeper.params", dict(params or {}), "nothing to search: give at least one "
                          "parameter a search space, e.g. train.lr: tag(log, interval(1e-4, 1e-1))")
    return SearchSpace(distributions, keys, fixed)


def representative_values(distribution: "BaseDistribution") -> list[Any]:
    """Values that exercise a distribution when checking that its overrides compose: every choice, both ends."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.low, distribution.high]
