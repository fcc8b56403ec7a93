"""Write-ups regenerated from the report: its Markdown tables replace marked regions of an existing Markdown file."""

from __future__ import annotations

import stat
from pathlib import Path

from gnnrisk.errors import DataError
from gnnrisk.utils.files import write_text_atomic

REGIONS = ("summary", "paired")


def markers(region: str) -> tuple[str, str]:
    """The begin and end marker lines of a region."""
    return f"<!-- gnnrisk-report:{region}:begin -->", f"<!-- gnnrisk-report:{region}:end -->"


def _lines_with(lines: list[str], marker: str) -> list[int]:
    """Indices of the lines that are exactly `marker` (surrounding whitespace aside)."""
    return [i for i, line in enumerate(lines) if line.strip() == marker]


def replace_regions(text: str, tables: dict[str, str], where: str) -> str:
    """`text` with the lines between each region's markers replaced by that region's table; the rest unchanged."""
    lines = text.splitlines(keepends=True)
    found = []
    for region in REGIONS:
        begin_marker, end_marker = markers(region)
        begin, end = _lines_with(lines, begin_marker), _lines_with(lines, end_marker)
        if not begin and not end:
            continue
        if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
            raise DataError(f"{where}: expected one line {begin_marker} followed by one line {end_marker}")
        if region not in tables:
            raise DataError(f"{where}: has a {region} region but this report has no {region} table "
                            f"(file not changed)")
        lines[begin[0] + 1: end[0]] = tables[region].splitlines(keepends=True)
        found.append(region)
    if not found:
        raise DataError(f"{where}: no gnnrisk-report markers (e.g. {markers(REGIONS[0])[0]} ... "
                        f"{markers(REGIONS[0])[1]}); nothing to replace")
    return "".join(lines)


def write_into(path: str | Path, tables: dict[str, str]) -> Path:
    """Rewrite the marked regions of the Markdown file `path` with `tables` ({region: Markdown}), atomically."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:  # newline="": CRLF files stay CRLF outside the regions
            text = fh.read()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as err:
        raise DataError(f"--into {path}: cannot read it ({err.strerror})") from err
    write_text_atomic(path, replace_regions(text, tables, f"--into {path}"))
    path.chmod(mode)  # the atomic write creates a private (0600) file: keep the write-up's permissions
    return path
