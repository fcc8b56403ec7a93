"""`gnnrisk-report` on bad input: clear messages, and the rest of the report still produced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnrisk.report.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main
from report_fixtures import config, fake_sweep, write_run


def test_missing_folder(tmp_path: Path, capsys):
    """A folder that does not exist: exit 2, one line naming it."""
    assert main([str(tmp_path / "nope")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("gnnrisk-report: error:") and "does not exist" in err and "Traceback" not in err


def test_folder_without_runs(tmp_path: Path, capsys):
    """A folder with no run in it: exit 2, says what a run folder holds."""
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "multirun.yaml").write_text("hydra: {}\n")
    assert main([str(tmp_path / "empty")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "no runs under" in err and "metrics.json" in err


def _one_line_refusal(capsys, flag: str, value: str) -> str:
    """The stderr of a refused command line: exactly one `--flag='value' is not allowed: ...` line; its text."""
    captured = capsys.readouterr()
    assert captured.err.startswith(f"gnnrisk-report: error: {flag}={value!r} is not allowed: "), captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err and "usage:" not in captured.err
    return captured.err


def test_unknown_metric_is_refused_before_anything_is_written(tmp_path: Path, capsys):
    """A misspelt metric: exit 2, one line naming --metrics and listing the available ones; nothing written."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    assert main([str(tmp_path / "s"), "--metrics", "test_acc,test_acuroc"]) == EXIT_ERROR
    err = _one_line_refusal(capsys, "--metrics", "test_acuroc")
    assert "available:" in err and "test_auroc" in err
    assert not (tmp_path / "s" / "report").exists()


@pytest.mark.parametrize("flag", ["--x", "--pareto-x", "--pareto-y"])
def test_unknown_axes_are_refused_before_anything_is_written(tmp_path: Path, capsys, flag: str):
    """An x or Pareto axis nobody reports: exit 2, one line naming the flag; nothing written."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    assert main([str(tmp_path / "s"), "--metrics", "test_acc", flag, "lambda"]) == EXIT_ERROR
    assert "available:" in _one_line_refusal(capsys, flag, "lambda")
    assert not (tmp_path / "s" / "report").exists()


def test_differing_metric_sets_union_with_warning(tmp_path: Path, capsys):
    """Runs with different metrics: the union, NaN where missing, a warning; counts use the runs that report it."""
    sweep = tmp_path / "s"
    for seed in range(3):
        metrics = {"test_acc": 0.5 + 0.1 * seed, "seed": seed, "epsilon": None}
        if seed < 2:
            metrics["test_auroc_true"] = 0.6 + 0.1 * seed
        write_run(sweep, f"seed={seed}", config("none", None, seed), metrics)
    assert main([str(sweep), "--metrics", "test_acc,test_auroc_true"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "test_auroc_true is missing in 1 of 3 finished runs" in err
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert summary.loc[0, "test_auroc_true_count"] == 2 and summary.loc[0, "test_acc_count"] == 3
    assert summary.loc[0, "test_auroc_true_mean"] == pytest.approx(0.65)
    runs = pd.read_csv(sweep / "report" / "runs.csv")
    assert runs["test_auroc_true"].isna().sum() == 1


def test_only_failed_runs(tmp_path: Path, capsys):
    """Every run failed: exit 1, failed.csv with the errors, the failures printed, no summary."""
    sweep = tmp_path / "s"
    write_run(sweep, "seed=-1", config("none", None, -1), error="seed=-1 is not allowed: expected an integer")
    assert main([str(sweep)]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert "no run finished" in captured.err and "seed=-1 is not allowed" in captured.out
    assert (sweep / "report" / "failed.csv").exists() and not (sweep / "report" / "summary.csv").exists()


def test_non_private_sweep_has_point_plots_not_epsilon_plots(tmp_path: Path, capsys):
    """A sweep without private runs: exit 0, a note, point plots by model instead of epsilon plots, the table."""
    sweep = tmp_path / "s"
    for model in ("gcn", "mlp"):
        for seed in range(2):
            write_run(sweep, f"model={model},seed={seed}", config("none", None, seed, model),
                      {"test_acc": 0.7 + seed / 10, "test_auroc": 0.6, "epsilon": None, "seed": seed})
    assert main([str(sweep), "--out", str(tmp_path / "r")]) == EXIT_OK
    captured = capsys.readouterr()
    assert "no metric-vs-epsilon plots" in captured.err
    assert "model.name" in captured.out and "0.750 ± 0.071" in captured.out
    assert {p.name for p in (tmp_path / "r").glob("*.png")} == {"test_acc_by_model_name.png",
                                                                 "test_auroc_by_model_name.png"}


def test_unreadable_metrics_file_is_skipped_with_warning(tmp_path: Path, capsys):
    """A truncated metrics.json (not written by the app) does not stop the report."""
    sweep = tmp_path / "s"
    for seed in range(2):
        write_run(sweep, f"seed={seed}", config("none", None, seed), {"test_acc": 0.7, "seed": seed})
    (sweep / "seed=1" / "metrics.json").write_text('{"test_acc": 0.')
    assert main([str(sweep)]) in (EXIT_OK, EXIT_PARTIAL)
    assert "unreadable" in capsys.readouterr().err
    assert json.loads((sweep / "seed=0" / "metrics.json").read_text())["test_acc"] == 0.7


@pytest.mark.parametrize("flag, value, reason", [("--digits", "-1", "expected an integer from 0 to 10"),
                                                 ("--digits", "11", "expected an integer from 0 to 10"),
                                                 ("--pareto-sense", "up", "expected two of min/max/auto"),
                                                 ("--metrics", ",", "expected comma-separated names")])
def test_bad_flag_values_are_one_line_and_exit_2(tmp_path: Path, capsys, flag: str, value: str, reason: str):
    """`--digits -1` and friends: one `field=value is not allowed` line (no usage block), exit 2, nothing written."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    assert main([str(tmp_path / "s"), flag, value]) == EXIT_ERROR
    assert reason in _one_line_refusal(capsys, flag, value)
    assert not (tmp_path / "s" / "report").exists()


def test_malformed_command_line_is_one_line(tmp_path: Path, capsys):
    """An unknown option or no folder: one line, exit 2, no usage block."""
    assert main([str(tmp_path), "--colour"]) == EXIT_ERROR
    assert main([]) == EXIT_ERROR
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("gnnrisk-report: error: ") for line in lines)
    assert "--colour" in lines[0] and "sweep_dir" in lines[1] and "usage:" not in "".join(lines)


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_unusable_out_folder_is_one_line_and_exit_2(tmp_path: Path, capsys, kind: str):
    """`--out` an existing file, or a folder that cannot be made (/proc/x): one line naming --out, exit 2."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    out = tmp_path / "taken.txt" if kind == "file" else Path("/proc/gnnrisk-report-test")
    if kind == "file":
        out.write_text("mine")
    assert main([str(tmp_path / "s"), "--metrics", "test_acc", "--out", str(out)]) == EXIT_ERROR
    _one_line_refusal(capsys, "--out", str(out))
    assert kind != "file" or out.read_text() == "mine"


@pytest.mark.parametrize("content", ['{"test_acc": 0.', "[0.7, 0.8]", "null", "\xff\xfe"])
def test_broken_metrics_file_counts_as_broken_not_finished(tmp_path: Path, capsys, content: str):
    """A metrics.json that is not a JSON object: the run is listed in failed.csv as broken, not averaged."""
    sweep = tmp_path / "s"
    for seed in range(3):
        write_run(sweep, f"seed={seed}", config("none", None, seed), {"test_acc": 0.7, "seed": seed})
    (sweep / "seed=1" / "metrics.json").write_bytes(content.encode("latin-1"))
    main([str(sweep)])
    runs = pd.read_csv(sweep / "report" / "runs.csv")
    assert dict(zip(runs["run"], runs["status"])) == {"seed=0": "finished", "seed=1": "broken", "seed=2": "finished"}
    failed = pd.read_csv(sweep / "report" / "failed.csv")
    assert list(failed["run"]) == ["seed=1"] and failed["error_type"].tolist() == ["BrokenMetrics"]
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert summary["n_runs"].tolist() == [2]
