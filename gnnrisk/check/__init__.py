"""Conformance check of a mechanism, built-in or plug-in: `gnnrisk-check privacy=NAME`, or from a test.

    from gnnrisk.check import check_mechanism
    report = check_mechanism("rr_edges")          # a `privacy=` member; optional overrides
    assert report.passed, report.table()

On a small synthetic graph (`harness.SMALL_GRAPH`): the interface (class contract, train()'s result, bad
input refused in one line), determinism (the same seed twice), accounting (the epsilon of the mechanism's
declared `dp_event()` recomputed by dp_accounting's RDP and PLD accountants must not exceed the one it
reports) and a canary audit at its unit (edge or node canaries; fails where eps_lower > the claimed epsilon).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gnnrisk.check.audit import check_audit
from gnnrisk.check.checks import check_accounting, check_determinism, check_interface
from gnnrisk.check.harness import AUDIT_EPSILON, SMALL_GRAPH, CheckReport, CheckResult, check_config, timed

CHECKS = ("interface", "determinism", "accounting", "audit")


def check_mechanism(privacy: str, overrides: Sequence[str] = (), checks: Sequence[str] = CHECKS) -> CheckReport:
    """Run `checks` on the mechanism of config member `privacy`; ConfigError (one line) if it cannot be run."""
    from gnnrisk.pipeline import execute_experiment
    from gnnrisk.privacy import build_mechanism

    start = time.perf_counter()
    cfg, used = check_config(privacy, list(overrides))
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="gnnrisk-check-") as tmp:
        began = time.perf_counter()
        first = execute_experiment(cfg, Path(tmp) / "run1")
        run_seconds = time.perf_counter() - began
        if "interface" in checks:
            results.append(timed("interface", lambda: check_interface(
                cfg.privacy.name, cfg, first.trained, int(first.data.num_nodes))))
            results[-1].seconds += run_seconds
        if "determinism" in checks:
            def again() -> CheckResult:
                second = execute_experiment(cfg, Path(tmp) / "run2")
                return check_determinism((first.metrics, first.trained), (second.metrics, second.trained))
            results.append(timed("determinism", again))
    if "accounting" in checks:
        mechanism = build_mechanism(cfg.privacy)
        results.append(timed("accounting", lambda: check_accounting(mechanism, first.trained.privacy)))
    if "audit" in checks:
        results.append(timed("audit", lambda: check_audit(cfg, first.data, first.trained, int(cfg.seed))))
    return CheckReport(str(cfg.privacy.name), used, results, time.perf_counter() - start)


def assert_conforms(privacy: str, overrides: Sequence[str] = (), **kwargs: Any) -> CheckReport:
    """`check_mechanism`, raising AssertionError with the report's table when a check fails (for pytest)."""
    report = check_mechanism(privacy, overrides, **kwargs)
    assert report.passed, report.table()
    return report


__all__ = ["AUDIT_EPSILON", "CHECKS", "SMALL_GRAPH", "CheckReport", "CheckResult", "assert_conforms",
           "check_accounting", "check_audit", "check_determinism", "check_interface", "check_mechanism"]
