"""A study remembers its report settings: the `report` callback records them in SWEEP/report_settings.json, and
`gnnrisk-report SWEEP` uses them where no command-line flag says otherwise (and says which it used)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from gnnrisk.errors import ConfigError
from gnnrisk.utils.files import write_json_atomic

SETTINGS_FILE = "report_settings.json"
WRITER = "gnnrisk.report.callback.ReportOnMultirunEnd"
DEFAULT_SENSE = "auto,auto"


@dataclass
class ReportSettings:
    """What a report is asked for; None = the default where the data allows it (see `make_report`)."""

    metrics: list[str] | None = None
    x: str | None = None
    pareto_x: str | None = None
    pareto_y: str | None = None
    pareto_sense: str = DEFAULT_SENSE
    html: bool = False
    digits: int = 3
    into: str | None = None


DEFAULTS = ReportSettings()
TYPES = {"metrics": list, "x": str, "pareto_x": str, "pareto_y": str, "pareto_sense": str, "html": bool,
         "digits": int, "into": str}


def parse_sense(text: str, field: str = "pareto_sense") -> tuple[str | None, str | None]:
    """`min,max`-style optimisation senses of the Pareto x and y axes (`auto` guesses from the name)."""
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    if len(parts) != 2 or any(p not in ("min", "max", "auto") for p in parts):
        raise ConfigError(field, text, "expected two of min/max/auto, e.g. min,max")
    return tuple(None if p == "auto" else p for p in parts)  # type: ignore[return-value]


def save_settings(sweep_dir: str | Path, settings: ReportSettings) -> Path:
    """Record `settings` as the study's own report settings (`into` as an absolute path)."""
    values = asdict(settings)
    if settings.into is not None:
        values["into"] = str(Path(settings.into).resolve())
    record = {"written_by": WRITER, "note": "the report settings of this study's own report; "
              "`gnnrisk-report SWEEP` uses them where no flag is given", "settings": values}
    return write_json_atomic(Path(sweep_dir) / SETTINGS_FILE, record)


def _valid(name: str, value: Any) -> bool:
    """Whether a remembered value has the type its setting takes (None allowed where the default is None)."""
    if value is None:
        return getattr(DEFAULTS, name) is None
    if name == "metrics":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if name == "digits":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10
    if name == "pareto_sense":
        try:
            return bool(parse_sense(value))
        except ConfigError:
            return False
    return isinstance(value, TYPES[name])


def load_settings(sweep_dir: str | Path) -> tuple[ReportSettings | None, str | None]:
    """The study's remembered settings, or None (and why, when the file is there but unusable)."""
    path = Path(sweep_dir) / SETTINGS_FILE
    if not path.is_file():
        return None, None
    try:
        values = json.loads(path.read_text()).get("settings")
    except (OSError, ValueError, AttributeError) as err:
        return None, f"{path}: unreadable ({err}); its settings are not used"
    if not isinstance(values, dict):
        return None, f"{path}: no `settings` object; its settings are not used"
    names = {f.name for f in fields(ReportSettings)}
    bad = [k for k, v in values.items() if k not in names or not _valid(k, v)]
    if bad:
        return None, f"{path}: unusable value(s) for {', '.join(bad)}; its settings are not used"
    return ReportSettings(**values), None


def _text(name: str, value: Any) -> str:
    """A setting as `name=value` the way the command line spells it."""
    shown = ",".join(value) if isinstance(value, list) else value
    return f"{name}={shown}"


def merge(flags: dict[str, Any], remembered: ReportSettings | None,
          source: Path | None = None) -> tuple[ReportSettings, set[str], list[str]]:
    """The settings to use: each flag given (not None) wins, else the remembered value, else the default.

    Returns the settings, the names that came from flags, and lines that say what was remembered and what a
    flag overrode."""
    given = {name for name, value in flags.items() if value is not None}
    base = remembered if remembered is not None else DEFAULTS
    values = {f.name: (flags[f.name] if f.name in given else getattr(base, f.name)) for f in fields(ReportSettings)}
    lines: list[str] = []
    if remembered is not None:
        kept = [_text(n, getattr(remembered, n)) for n in values
                if n not in given and getattr(remembered, n) != getattr(DEFAULTS, n)]
        lines.append(f"using the study's report settings from {source}: {', '.join(kept) or 'the defaults'}"
                     f" (flags override them; --ignore-settings ignores them)")
        changed = [f"--{n.replace('_', '-')} overrides the study's {_text(n, getattr(remembered, n))}"
                   for n in sorted(given) if flags[n] != getattr(remembered, n)]
        lines += changed
    return ReportSettings(**values), given, lines
