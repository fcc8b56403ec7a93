"""The grid sweeper: a union of products, each job once, command-line axes replacing the blocks' own."""

from __future__ import annotations

import json

import pytest

from gnnrisk.sweeper import grid_jobs
from sweep_helpers import TINY, run_sweep


def _as_sets(jobs: list[list[str]]) -> list[frozenset[str]]:
    return [frozenset(j) for j in jobs]


def test_union_of_block_products():
    jobs = grid_jobs({"seed": "0,1"}, [{"privacy": "none", "model": "gcn,mlp"},
                                       {"privacy": "edgerand,gap_edp", "privacy.epsilon": "1,8"}], [])
    assert len(jobs) == 2 * 2 + 2 * 2 * 2
    assert frozenset({"seed=1", "privacy=none", "model=mlp"}) in _as_sets(jobs)
    assert not any("privacy=none" in j and any(o.startswith("privacy.epsilon") for o in j) for j in jobs)


def test_repeated_jobs_run_once_and_order_is_kept():
    jobs = grid_jobs(None, [{"a": "1,2"}, {"a": "2,3"}], [])
    assert jobs == [["a=1"], ["a=2"], ["a=3"]]


def test_command_line_replaces_an_axis_in_every_block():
    jobs = grid_jobs({"seed": "range(3)"}, [{"privacy": "none"}, {"privacy": "edgerand", "privacy.epsilon": "1,2"}],
                     ["seed=7", "privacy.epsilon=4"])
    assert _as_sets(jobs) == [frozenset({"seed=7", "privacy=none", "privacy.epsilon=4"}),
                              frozenset({"seed=7", "privacy=edgerand", "privacy.epsilon=4"})]


def test_no_blocks_is_the_basic_product():
    assert len(grid_jobs({"a": "1,2", "b": "x,y,z"}, None, [])) == 6


@pytest.mark.slow
def test_a_real_sweep_runs_each_distinct_job_once(tmp_path):
    """`gnnrisk-run -m experiment=quick` with tiny overrides: the grid sweeper launches the union, no repeats."""
    sweep = tmp_path / "grid"
    run_sweep(sweep, "experiment=quick", *TINY, "seed=0", "privacy.epsilon=2", "privacy=none,gap_edp",
              "model=gcn", "hydra.callbacks.report.metrics=[test_auroc]")
    runs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 2, runs
    names = {json.loads((sweep / r / "metrics.json").read_text())["mechanism"] for r in runs}
    assert names == {"none", "gap_edp"}


@pytest.mark.slow
def test_a_run_that_cannot_fit_fails_alone_and_the_report_lists_it(tmp_path):
    """EdgeRand above max_edges: that run keeps its one-line error, the sweep goes on, failed.csv names it."""
    sweep = tmp_path / "fit"
    proc = run_sweep(sweep, *TINY, "privacy=edgerand", "privacy.epsilon=1,30", "privacy.max_edges=3000",
                     "+hydra.callbacks.report._target_=gnnrisk.report.callback.ReportOnMultirunEnd", expect=3)
    assert "1 of 2 runs of the sweep failed" in proc.stderr
    failed = sorted(p.parent.name for p in sweep.glob("*/error.json"))
    finished = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert len(failed) == 1 and "privacy.epsilon=1," in failed[0]
    assert len(finished) == 1 and "privacy.epsilon=30," in finished[0]
    error = json.loads((sweep / failed[0] / "error.json").read_text())
    assert error["type"] == "ConfigError" and "privacy.max_edges" in error["error"] and error["details"] is None
    assert failed[0] in (sweep / "report" / "failed.csv").read_text()
    assert "1 run(s) failed or did not finish" in proc.stdout


@pytest.mark.slow
def test_long_override_lists_get_bounded_stable_folder_names(tmp_path):
    """Overrides longer than a file name allows: the run still lands in a folder of at most 200 bytes, a
    prefix plus a hash, and a re-run finds the same folder (resume); skip_finished is not in the name."""
    from gnnrisk.results import MAX_DIRNAME_BYTES, run_dirname

    long = "x" * 400
    assert run_dirname("a=1,b=2") == "a=1,b=2"
    name = run_dirname(f"note={long}")
    assert len(name.encode()) == MAX_DIRNAME_BYTES and name.startswith("note=xxx")
    assert name == run_dirname(f"note={long}") != run_dirname(f"note={long}y")
    sweep = tmp_path / "long"
    run_sweep(sweep, *TINY, f"+note={long}", "seed=0,1")
    first = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert len(first) == 2 and all(len(n.encode()) <= MAX_DIRNAME_BYTES for n in first)
    proc = run_sweep(sweep, *TINY, f"+note={long}", "seed=0,1", "skip_finished=true")
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == first
    assert "2 skipped" in proc.stdout + proc.stderr or len(list(sweep.glob("*/.skipped"))) == 2
