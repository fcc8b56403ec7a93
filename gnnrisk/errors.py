"""User-facing errors: one line that names the field and what is allowed."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence


class GnnriskError(Exception):
    """An error caused by the user's input (config, files, data), reported without a traceback."""


class ConfigError(GnnriskError):
    """A config field holds a value that is not allowed."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: {allowed}")


class ConfigErrors(ConfigError):
    """Several fields refused at once, one ConfigError each: reported one line per field.

    A ConfigError itself, so that code catching one catches these; `field`, `value`, `allowed` are the first's.
    """

    def __init__(self, errors: Sequence[ConfigError]):
        self.errors = list(errors)
        first = self.errors[0]
        self.field, self.value, self.allowed = first.field, first.value, first.allowed
        Exception.__init__(self, "\n".join(map(str, self.errors)))


class Refusals:
    """Collects the refusals of independent checks, so that one run reports every bad field at once."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run the block; a ConfigError (or several) it raises is kept for `raise_any` instead of stopping."""
        try:
            yield
        except ConfigErrors as err:
            self.errors += err.errors
        except ConfigError as err:
            self.errors.append(err)

    def raise_any(self) -> None:
        """Raise what was collected: one ConfigError as itself, several as ConfigErrors (first seen first)."""
        unique = list({str(err): err for err in self.errors}.values())
        if len(unique) == 1:
            raise unique[0]
        if unique:
            raise ConfigErrors(unique)


def error_lines(err: GnnriskError) -> list[str]:
    """The lines a user error is reported as: one per refused field."""
    return [str(e) for e in err.errors] if isinstance(err, ConfigErrors) else [str(err)]


class DataError(GnnriskError):
    """A data file or a generated graph cannot be used (missing, malformed, empty, NaN)."""


def model_settings(model: str, known: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`known` (a model's defaults) overlaid with `cfg` (its `name` aside); a key the model lacks is refused."""
    unknown = [k for k in cfg if k not in known and k != "name"]
    if unknown:
        raise ConfigError(f"model.{unknown[0]}", cfg[unknown[0]],
                          f"model={model} has no such setting; its keys are " + ", ".join(known))
    return {**known, **{k: v for k, v in cfg.items() if k != "name"}}


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
    if isinstance(value, str) and value.strip().lower().lstrip("+-") in (".inf", "infinity", ".nan"):
        spelled = value.strip().lower().replace(".", "").replace("infinity", "inf")
        raise ConfigError(field, value, f"expected {kind} in {rng} (on the command line write {spelled}; "
                          f"{value.strip()} is YAML's spelling, read as text in an override)")
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
