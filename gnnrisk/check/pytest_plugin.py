"""gnnrisk's pytest plug-in (entry-point group `pytest11`): fixtures for a plug-in package's own tests.

Installed with gnnrisk, so a plug-in's tests use them without imports:

    def test_rr_edges_conforms(gnnrisk_conformance):
        gnnrisk_conformance("rr_edges")                      # every check; a failure shows the report's table

    def test_noise_off_is_caught(gnnrisk_check_report):
        report = gnnrisk_check_report("rr_edges", ["privacy.flip_prob=0"], checks=("audit",))
        assert not report.passed

Nothing of gnnrisk is imported until a fixture is used, so the plug-in costs other test sessions nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gnnrisk.check.harness import CheckReport


@pytest.fixture
def gnnrisk_check_report() -> Callable[..., CheckReport]:
    """`gnnrisk.check.check_mechanism(privacy, overrides=(), checks=...)`: the report, pass or fail, not asserted."""
    from gnnrisk.check import check_mechanism

    return check_mechanism


@pytest.fixture
def gnnrisk_conformance() -> Callable[..., CheckReport]:
    """`gnnrisk.check.assert_conforms(privacy, overrides=(), checks=...)`: fails the test with the report's table."""
    from gnnrisk.check import CHECKS, check_mechanism


    def conforms(privacy: str, overrides: Sequence[str] = (), checks: Sequence[str] = CHECKS) -> CheckReport:
        report = check_mechanism(privacy, overrides, checks=checks)
        if not report.passed:
            pytest.fail(f"gnnrisk-check {report.mechanism} failed:\n{report.table()}", pytrace=False)
        return report

    return conforms
