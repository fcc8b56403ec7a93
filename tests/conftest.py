"""Suite-wide hooks."""

from __future__ import annotations

import pytest

from gnnrisk.utils.runtime import remove_generated_templates


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no PyG-generated module files in the temp folder (the app does the same after each run)."""
    remove_generated_templates()
