"""Install examples/plugin_example into a folder (not the venv), as `pip install` would; shared by the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin_example"
# What the example registers: pages and tests that name these need it installed.
MEMBERS = ("privacy=rr_edges", "data=blocks", "model=appnp", "confidence_gap")


def install_example(folder: Path) -> Path:
    """pip-install the example plug-in from a copy of its source into `folder`/site; returns that site folder."""
    source, target = folder / "src", folder / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, timeout=300)
    if not list(target.glob("gnnrisk_example_plugin-*.dist-info")):
        raise RuntimeError(f"pip left no gnnrisk_example_plugin dist-info in {target}")
    return target


def activate(site: Path) -> None:
    """Put an installed site folder on sys.path and make the registries discover its entry points again."""
    from gnnrisk.attack import ATTACKS
    from gnnrisk.data import LOADERS
    from gnnrisk.models import MODEL_REGISTRY
    from gnnrisk.privacy import MECHANISMS

    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    for registry in (MECHANISMS, LOADERS, ATTACKS, MODEL_REGISTRY):
        registry.reload()
