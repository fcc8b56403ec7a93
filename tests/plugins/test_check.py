"""gnnrisk-check: broken mechanisms fail it, the built-ins pass it, and it reports in a table and check.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gnnrisk.check import check_mechanism
from gnnrisk.check.checks import independent_epsilons
from gnnrisk.check.cli import main
from gnnrisk.privacy import MECHANISMS

HERE = Path(__file__).resolve().parent


@pytest.fixture
def broken(monkeypatch):
    """Register the deliberately broken mechanisms of broken_mechanisms.py for one test."""
    monkeypatch.syspath_prepend(str(HERE))
    for name, cls in (("noiseless_edgerand", "NoiselessEdgeRand"), ("underreporting_gap_edp", "UnderReportingGapEdp"),
                      ("claiming_node_dp", "ClaimingNodeDp"), ("no_train", "NoTrain")):
        monkeypatch.setitem(MECHANISMS, name, f"broken_mechanisms:{cls}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_noiseless_edgerand_fails_the_edge_canary_audit(broken, seed):
    """EdgeRand with its noise off still claiming epsilon 1 (and the honest flip probability): the audit refutes it."""
    report = check_mechanism("edgerand", ["privacy.name=noiseless_edgerand", f"seed={seed}"],
                             checks=("interface", "accounting", "audit"))
    assert not report.passed
    audit = report.result("audit")
    assert audit.status == "fail" and audit.values["eps_lower"] > audit.values["claimed_epsilon"] == 1.0
    assert report.result("interface").status == report.result("accounting").status == "pass"  # only the audit sees it


@pytest.mark.slow
def test_underreported_epsilon_fails_the_accounting(broken):
    """GAP-EDP reporting half the epsilon its DpEvent spends: RDP and PLD both refute it."""
    report = check_mechanism("gap_edp", ["privacy.name=underreporting_gap_edp"], checks=("accounting",))
    result = report.result("accounting")
    assert result.status == "fail" and result.values["pld"] > 0.5 and "reports epsilon 0.4999" in result.detail


@pytest.mark.slow
def test_training_without_noise_claiming_node_dp_fails_the_node_canary_audit(broken):
    """Ordinary training that claims node-level epsilon 1: the node canary audit refutes it."""
    report = check_mechanism("none", ["privacy.name=claiming_node_dp", "model=mlp"], checks=("audit",))
    assert report.result("audit").status == "fail"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["none", "edgerand"])
def test_builtins_pass(name):
    """The non-private reference and EdgeRand pass every check."""
    report = check_mechanism(name)
    assert report.passed, report.table()
    statuses = {r.check: r.status for r in report.results}
    assert statuses["interface"] == statuses["determinism"] == "pass"
    if name == "edgerand":
        assert statuses["accounting"] == statuses["audit"] == "pass"


@pytest.mark.slow
@pytest.mark.parametrize("name, audited", [("gap_edp", True), ("lapgraph", True), ("gap_ndp", True),
                                           ("dp_mlp", True), ("dpsgd_node", True)])
def test_slow_builtins_pass(name, audited):
    """The private built-ins pass every check (dpsgd_node declares no DpEvent: its accounting is skipped)."""
    report = check_mechanism(name)
    assert report.passed, report.table()
    assert report.result("audit").status == "pass"
    assert report.result("accounting").status == ("skip" if name == "dpsgd_node" else "pass")


def test_independent_epsilons_of_randomized_response():
    """Randomized response with flip probability 1/(e^eps+1) is eps-DP: PLD recovers eps at delta 0."""
    import math

    import dp_accounting as dpa

    p = 1 / (math.exp(2.0) + 1)
    found = independent_epsilons(dpa.RandomizedResponseDpEvent(2 * p, 2), 0.0)
    assert abs(found["pld"] - 2.0) < 1e-2 and found["pld_relation"] == "replace_one"


@pytest.mark.slow
def test_cli_prints_the_table_and_writes_check_json(tmp_path, capsys):
    """`gnnrisk-check privacy=edgerand --only ...`: exit 0, a table, and check.json with every check."""
    code = main(["privacy=edgerand", "--only", "interface,accounting", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("gnnrisk-check edgerand: PASSED")
    assert lines[2].split()[:2] == ["interface", "PASS"] and lines[3].split()[:2] == ["accounting", "PASS"]
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["passed"] and [c["check"] for c in report["checks"]] == ["interface", "accounting"]
    assert report["mechanism"] == "edgerand" and "privacy.epsilon=1.0" in report["overrides"]


@pytest.mark.parametrize("argv, match", [
    (["data.num_nodes=100"], "privacy=None is not allowed: expected one privacy=NAME"),
    (["privacy=nope"], "privacy='nope' is not allowed: expected one of"),
    (["privacy=edgerand", "--only", "speed"], "--only='speed' is not allowed"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, match, capsys):
    """A missing or unknown mechanism, an unknown check: exit 2, one line on stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err


def test_cli_refuses_a_contract_breaking_plugin(broken, capsys):
    """A registered class without train(): refused in one line before any training."""
    assert main(["privacy=edgerand", "privacy.name=no_train"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "breaks the Mechanism contract" in err


def test_main_leaves_the_callers_logging_as_it_was() -> None:
    """`main` runs in its caller's process (a plug-in's tests, a notebook): only the console script sets up
    logging, so later runs in that process still log (a lowered gnnrisk.pipeline level silenced their app.log)."""
    pipeline, root = logging.getLogger("gnnrisk.pipeline"), logging.getLogger()
    before = (pipeline.level, list(root.handlers), root.level)
    assert main(["privacy="]) == 2
    assert (pipeline.level, list(root.handlers), root.level) == before
