"""Fixtures of the plug-in tests: a fake installed distribution whose entry points the registries discover."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gnnrisk.attack import ATTACKS
from gnnrisk.audit import AUDITS
from gnnrisk.data import LOADERS
from gnnrisk.explain.algorithms import EXPLAINERS
from gnnrisk.logger import LOGGERS
from gnnrisk.models import MODEL_REGISTRY
from gnnrisk.privacy import MECHANISMS

REGISTRIES = (MECHANISMS, LOADERS, ATTACKS, MODEL_REGISTRY, EXPLAINERS, LOGGERS, AUDITS)

HERE = Path(__file__).resolve().parent


def write_distribution(root: Path, name: str, entry_points: dict[str, dict[str, str]],
                       modules: dict[str, str] | None = None) -> Path:
    """An installed distribution `name` under `root` (its dist-info and modules), as pip would leave it."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for rel, text in (modules or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def installed(tmp_path, monkeypatch) -> Callable[..., Path]:
    """Install a fake distribution on sys.path (undone after the test) and make the registries look again."""
    monkeypatch.syspath_prepend(str(HERE))  # broken_mechanisms
    counter = iter(range(100))

    def install(name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None) -> Path:
        root = write_distribution(tmp_path / f"site{next(counter)}", name, entry_points, modules)
        monkeypatch.syspath_prepend(str(root))
        for registry in REGISTRIES:
            registry.reload()
        return root

    yield install
    for mod in [m for m in sys.modules if m.startswith("fakeplug")]:
        del sys.modules[mod]
    for registry in REGISTRIES:
        registry.reload()
