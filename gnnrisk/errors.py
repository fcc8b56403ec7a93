"""User-facing errors: one line that names the field and what is allowed."""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence


class GnnriskError(Exception):
    """An error caused by the user's input (config, files, data), reported without a traceback."""


class ConfigError(GnnriskError):
    """A config field holds a value that is not allowed."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: {allowed}")


class DataError(GnnriskError):
    """A data file or a generated graph cannot be used (missing, malformed, empty, NaN)."""


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    """Return `value` if it is one of `choices`, else raise a ConfigError listing them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(field, value, "expected one of " + ", ".join(map(str, choices)))
    return value


def check_number(field: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> float:
    """Return `value` as a number inside the given range, else raise a ConfigError."""
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(field, value, f"expected {kind} in {rng}")
    if math.isnan(value) or (integer and math.isinf(value)):  # before int(), which raises on both
        raise ConfigError(field, value, f"expected {kind} in {rng}")
    if integer and int(value) != value:
        raise ConfigError(field, value, f"expected {kind} in {rng}")
    if (low is not None and (value < low or (low_open and value == low))) or (
            high is not None and (value > high or (high_open and value == high))):
        raise ConfigError(field, value, f"expected {kind} in {rng}")
    return int(value) if integer else float(value)


def check_fractions(field: str, values: Sequence[Any], *, length: int | None = None,
                    sums_to_one: bool = False) -> list[float]:
    """Validate a list of probabilities (each in [0, 1]), optionally of a given length summing to 1."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ConfigError(field, values, "expected a list of numbers in [0, 1]")
    if length is not None and len(values) != length:
        raise ConfigError(field, list(values), f"expected {length} values, one per group")
    out = [check_number(f"{field}[{i}]", v, low=0.0, high=1.0) for i, v in enumerate(values)]
    if sums_to_one and abs(sum(out) - 1.0) > 1e-6:
        raise ConfigError(field, out, "expected fractions that sum to 1")
    return out
