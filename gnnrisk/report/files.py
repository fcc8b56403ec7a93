"""The report owns its output folder: it checks the folder before writing, lists what it wrote in manifest.json,
and removes what an earlier report listed there and this one did not write again (nothing else)."""

from __future__ import annotations

import fnmatch
import json
import tempfile
from pathlib import Path
from typing import Any

from gnnrisk.errors import ConfigError
from gnnrisk.utils.files import write_json_atomic

MANIFEST = "manifest.json"
# Names a report writes; used only to point at leftovers of a report written before manifests existed.
REPORT_NAMES = ("runs.csv", "failed.csv", "summary.*", "paired.*", "*_vs_*.png", "*_vs_*.pdf", "*_by_*.png",
                "*_by_*.pdf", "pareto_*.png", "pareto_*.pdf", "index.html")


def prepare_out(out_dir: Path, field: str = "out") -> None:
    """Create `out_dir` if missing and check that files can be written in it; a ConfigError naming `field` if not."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(field, str(out_dir), "it is a file; expected a folder (created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise ConfigError(field, str(out_dir), f"cannot write a report there ({err.strerror or err})") from None


def _own_name(name: object) -> bool:
    """Whether a manifest entry is a plain file name (never a path out of the folder)."""
    return isinstance(name, str) and name not in ("", ".", "..", MANIFEST) and Path(name).name == name


def previous_files(out_dir: Path) -> list[str] | None:
    """The files the previous report in `out_dir` listed in its manifest; None without a readable manifest."""
    try:
        listed = json.loads((out_dir / MANIFEST).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return [n for n in listed if _own_name(n)] if isinstance(listed, list) else None


def remove_stale(out_dir: Path, previous: list[str] | None, written: list[Path]) -> list[str]:
    """Remove the files of the previous report that this one did not write again; return their names."""
    keep = {p.name for p in written if p.parent == out_dir}
    removed = []
    for name in previous or []:
        path = out_dir / name
        if name not in keep and path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def strays(out_dir: Path, written: list[Path]) -> list[str]:
    """Files named like a report's that this report did not write (left by one from before manifests)."""
    keep = {p.name for p in written}
    return sorted(p.name for p in out_dir.iterdir() if p.is_file() and p.name not in keep
                  and any(fnmatch.fnmatch(p.name, pattern) for pattern in REPORT_NAMES))


def write_manifest(out_dir: Path, written: list[Path], settings: dict[str, Any]) -> Path:
    """List the files this report wrote into `out_dir` (and the settings it used) in manifest.json."""
    names = list(dict.fromkeys(p.name for p in written if p.parent == out_dir))
    return write_json_atomic(out_dir / MANIFEST, {"written_by": "gnnrisk-report", "settings": settings,
                                                  "files": names})
