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
    """`text` with the lines between each region's markers replaced by that region's table; the rest unchanged.

    `where` names the file in an error message (`PAGE: ...`; empty: the reason alone)."""
    where = f"{where}: " if where else ""
    lines = text.splitlines(keepends=True)
    found = []
    for region in REGIONS:
        begin_marker, end_marker = markers(region)
        begin, end = _lines_with(lines, begin_marker), _lines_with(lines, end_marker)
        if not begin and not end:
            continue
        if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
            raise DataError(f"{where}expected one line {begin_marker} followed by one line {end_marker}")
        if region not in tables:
            raise DataError(f"{where}has a {region} region but this report has no {region} table "
                            f"(file not changed)")
        lines[begin[0] + 1: end[0]] = tables[region].splitlines(keepends=True)
        found.append(region)
    if not found:
        raise DataError(f"{where}no gnnrisk-report markers (e.g. {markers(REGIONS[0])[0]} ... "
                        f"{markers(REGIONS[0])[1]}); nothing to replace")
    return "".join(lines)


def read_into(path: str | Path, tables: dict[str, str]) -> str:
    """The Markdown file `path` with its marked regions rewritten with `tables` ({region: Markdown}), not yet
    written; a DataError (its reason, without the path) when it cannot be read or has no usable markers."""
    path = Path(path)
    if path.is_dir():
        raise DataError("it is a folder; expected a Markdown file with gnnrisk-report markers")
    try:
        with open(path, newline="") as fh:  # newline="": CRLF files stay CRLF outside the regions
            text = fh.read()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise DataError(f"cannot read it ({reason})") from err
    return replace_regions(text, tables, "")


def write_prepared(path: str | Path, text: str) -> Path:
    """Write the rewritten write-up `text` to `path` atomically, keeping the file's permissions."""
    path = Path(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    write_text_atomic(path, text)
    path.chmod(mode)  # the atomic write creates a private (0600) file: keep the write-up's permissions
    return path


def write_into(path: str | Path, tables: dict[str, str]) -> Path:
    """Rewrite the marked regions of the Markdown file `path` with `tables` ({region: Markdown}), atomically."""
    try:
        text = read_into(path, tables)
    except DataError as err:
        raise DataError(f"--into {path}: {err}") from None
    return write_prepared(path, text)
