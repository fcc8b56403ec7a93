"""What a private run on the city protects: `edge:<relation>`, `person` or `incident`.

Neighbouring cities, for each unit:

- `edge:knows`, `edge:lives_at`, `edge:frequents`: one tie of that relation is added or removed (with
  its reverse edge). Nothing else is hidden: the people, their features, every other relation, the
  incidents and the record are the same in both cities. Edge privacy on `knows` does not hide that a
  person was involved in an incident, nor where they live.
- `person`: one person is added or removed with everything about them: their features, every tie of
  every relation (`knows`, `lives_at`, `frequents`), and their involvements with the incidents they
  were involved in (each incident here has one person). It hides, up to epsilon, whether the person is
  in the city at all, and so covers every edge unit and their incidents; a person with more ties or
  incidents than the mechanism's degree caps is protected on the capped graph the mechanism reads.
- `incident`: one incident is added or removed with its place, its person link, its time and whether
  it was recorded. It hides an incident, not who a person knows or where they live.

The place adjacency (`adjacent`) is the grid: public geography, never a unit. Incident links
(`occurred_at`, `involved_in`) are protected by the `incident` and `person` units, not as edge units:
an involvement link without its incident is not a fact of the city.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gnnrisk.errors import ConfigError

KINDS = ("edge", "person", "incident")
EDGE_RELATIONS: dict[str, tuple[str, str, str]] = {  # the relations an edge unit can name
    "knows": ("person", "knows", "person"),
    "lives_at": ("person", "lives_at", "place"),
    "frequents": ("person", "frequents", "place"),
}
NOT_EDGE_UNITS = {
    "adjacent": "the place adjacency is the grid, public geography",
    "occurred_at": "an incident's place is protected with the incident: use privacy.unit=incident (or person)",
    "involved_in": "an involvement is protected with its incident: use privacy.unit=incident (or person)",
}
DETAILS = {
    "edge": "one {relation} tie ({src} -> {dst}, with its reverse) added or removed; people, their features, "
            "other relations, incidents and the record unchanged",
    "person": "one person added or removed with their features, every knows/lives_at/frequents tie and the "
              "incidents they were involved in",
    "incident": "one incident added or removed with its place, its person link, its time and its record",
}


@dataclass(frozen=True)
class Unit:
    """A privacy unit on the city; `relation` is the edge type of an edge unit (None otherwise)."""

    kind: str
    relation: tuple[str, str, str] | None = None

    def __str__(self) -> str:
        return f"edge:{self.relation[1]}" if self.kind == "edge" else self.kind

    @property
    def detail(self) -> str:
        """What the unit protects, in words (the run's `privacy_unit_detail`)."""
        if self.relation is None:
            return DETAILS[self.kind]
        src, rel, dst = self.relation
        return DETAILS["edge"].format(relation=rel, src=src, dst=dst)


def allowed_units(kinds: tuple[str, ...] = KINDS) -> list[str]:
    """The unit strings of `kinds`, for error messages."""
    out: list[str] = []
    for kind in kinds:
        out += [f"edge:{r}" for r in EDGE_RELATIONS] if kind == "edge" else [kind]
    return out


def parse_unit(value: Any, kinds: tuple[str, ...] = KINDS, field: str = "privacy.unit",
               mechanism: str | None = None) -> Unit:
    """`value` ("edge:<relation>", "person" or "incident") as a Unit among `kinds`, else a one-line ConfigError."""
    by = f" for privacy={mechanism}" if mechanism else ""
    allowed = "one of " + ", ".join(allowed_units(kinds)) + by
    if not isinstance(value, str):
        raise ConfigError(field, value, f"expected {allowed}")
    kind, _, relation = value.partition(":")
    if kind == "edge":
        if relation in NOT_EDGE_UNITS:
            raise ConfigError(field, value, f"not an edge unit: {NOT_EDGE_UNITS[relation]}; allowed: "
                              + ", ".join(allowed_units(kinds)))
        if relation not in EDGE_RELATIONS:
            raise ConfigError(field, value, f"the city has no relation {relation!r} to protect; expected {allowed}")
        unit = Unit("edge", EDGE_RELATIONS[relation])
    elif kind in KINDS and not relation:
        unit = Unit(kind)
    else:
        raise ConfigError(field, value, f"expected {allowed}")
    if unit.kind not in kinds:
        raise ConfigError(field, value, f"{mechanism or 'this mechanism'} cannot protect a {unit.kind} unit; "
                          f"expected {allowed}")
    return unit
