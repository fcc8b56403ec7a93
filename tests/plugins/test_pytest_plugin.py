"""gnnrisk's pytest plug-in (entry point pytest11): a plug-in package's tests get the conformance fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PLUGIN_TESTS = '''
import pytest

from gnnrisk.privacy import MECHANISMS


@pytest.fixture(autouse=True)
def broken(monkeypatch):
    monkeypatch.setitem(MECHANISMS, "underreporting_gap_edp", "broken_mechanisms:UnderReportingGapEdp")


def test_edgerand_conforms(gnnrisk_conformance):
    report = gnnrisk_conformance("edgerand", checks=("accounting",))
    assert report.result("accounting").status == "pass"


def test_underreporting_fails_with_the_table(gnnrisk_conformance):
    gnnrisk_conformance("gap_edp", ["privacy.name=underreporting_gap_edp"], checks=("accounting",))


def test_report_without_assertion(gnnrisk_check_report):
    report = gnnrisk_check_report("gap_edp", ["privacy.name=underreporting_gap_edp"], checks=("accounting",))
    assert not report.passed and report.result("accounting").status == "fail"
'''


@pytest.mark.slow  # a pytest process and three small trainings: ~20 s on 2 cores
def test_fixtures_come_with_the_installed_package(tmp_path):
    """A fresh pytest process finds gnnrisk_conformance and gnnrisk_check_report through the pytest11 entry
    point (no conftest, no import): a conforming mechanism passes, an under-reporting one fails, its
    failure message is the check's table."""
    (tmp_path / "test_my_plugin.py").write_text(PLUGIN_TESTS)
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "test_my_plugin.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 2 passed" in out, out
    assert "gnnrisk-check underreporting_gap_edp failed:" in out and "accounting" in out
    assert "FAILED test_my_plugin.py::test_underreporting_fails_with_the_table" in out
