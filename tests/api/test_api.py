"""gnnrisk's Python API (`gnnrisk.run`, `gnnrisk.sweep`, `gnnrisk.report.load`) against the command line."""

from __future__ import annotations

import json
import logging
import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

import gnnrisk
import gnnrisk.report
from gnnrisk.app import CONFIG_DIR
from gnnrisk.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.num_nodes=200", "train.epochs=5", "threads=1"]
NAMES = "data.num_nodes=200,{},threads=1,train.epochs=5"  # a sweep run's folder: its overrides, sorted


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m gnnrisk ARGS`, as a user runs it (one thread: the machine is shared)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gnnrisk", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def cli_error(*args: str, cwd: Path) -> str:
    """The one line `gnnrisk-run ARGS` prints for bad input, without its `gnnrisk: error: ` prefix."""
    proc = cli(*args, cwd=cwd)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gnnrisk: error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0].removeprefix("gnnrisk: error: ")


def untimed(metrics: dict) -> str:
    """The metrics without wall times, as comparable text (NaN == NaN)."""
    return json.dumps({k: v for k, v in metrics.items() if not k.endswith("seconds")}, sort_keys=True)


def files(folder: Path) -> list[str]:
    """Every file under `folder`, relative."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_run_returns_and_writes_what_the_cli_writes(tmp_path):
    overrides = [*TINY, "privacy=edgerand", "privacy.epsilon=2"]
    proc = cli(*overrides, f"hydra.run.dir={tmp_path / 'cli'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = gnnrisk.run(overrides, run_dir=tmp_path / "api")
    written = json.loads((tmp_path / "api" / "metrics.json").read_text())
    assert untimed(written) == untimed(json.loads((tmp_path / "cli" / "metrics.json").read_text()))
    assert json.dumps(result.metrics, sort_keys=True) == json.dumps(written, sort_keys=True)
    assert files(tmp_path / "api") == files(tmp_path / "cli")  # config.yaml, env.json, .hydra/, app.log, ...
    for name in ("config.yaml", ".hydra/config.yaml", ".hydra/overrides.yaml"):
        assert (tmp_path / "api" / name).read_text() == (tmp_path / "cli" / name).read_text(), name
    assert result.run_dir == (tmp_path / "api").resolve()
    assert result.config.privacy.name == "edgerand" and "hydra" not in result.config
    assert result.data.num_nodes == 200 and result.model is result.trained.model
    assert tuple(result.trained.predict_proba().shape) == (200, 2)
    assert result.trained.graph is not result.data  # EdgeRand's model is queried on the released graph


@pytest.mark.parametrize("overrides", [["model=transformer"], ["data.foo=1"], ["train.epochs=[1"]])
def test_refused_override_raises_the_cli_line(tmp_path, overrides):
    with pytest.raises(ConfigError) as caught:
        gnnrisk.run(overrides, run_dir=tmp_path / "api")
    assert str(caught.value) == cli_error(*overrides, cwd=tmp_path)
    assert not (tmp_path / "api").exists()  # refused before the run folder exists, as on the command line


def test_refused_setting_raises_and_leaves_error_json(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.num_nodes=-5 is not allowed: ") as caught:
        gnnrisk.run([*TINY, "data.num_nodes=-5"], run_dir=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "error.json").read_text())["error"] == str(caught.value)
    assert not (tmp_path / "run" / "metrics.json").exists()
    with pytest.raises(DataError, match="nope.csv"):
        gnnrisk.run(["data=edgelist", f"data.edges_path={tmp_path / 'nope.csv'}",
                     f"data.nodes_path={tmp_path / 'nodes.csv'}"], run_dir=tmp_path / "edgelist")
    with pytest.raises(ConfigError, match="gnnrisk.sweep"):
        gnnrisk.run(["seed=0,1"])  # one run: a sweep value points to sweep()
    with pytest.raises(TypeError, match="list of override strings"):
        gnnrisk.run("model=sage")


def test_repeated_calls_leave_hydra_and_logging_as_they_were(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    first = gnnrisk.run([*TINY, "seed=1"])  # the default run folder: hydra.run.dir with ${now:...}, resolved
    second = gnnrisk.run([*TINY, "seed=2", "model=sage"])
    again = gnnrisk.run([*TINY, "seed=1"], run_dir="again")
    assert first.run_dir.parent.parent == tmp_path.resolve() / "outputs" / "runs"
    assert first.run_dir.name.endswith("_synthetic_gcn_none_s1") and second.run_dir.name.endswith("_sage_none_s2")
    assert untimed(again.metrics) == untimed(first.metrics) != untimed(second.metrics)
    assert "[gnnrisk.pipeline][INFO] - data synthetic: 200 nodes" in (first.run_dir / "app.log").read_text()
    assert not GlobalHydra.instance().is_initialized() and not HydraConfig.initialized()
    assert root.handlers == handlers and root.level == level
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):  # a caller's own Hydra is kept
        gnnrisk.run([*TINY], run_dir="inside")
        assert compose("config", overrides=["seed=5"]).seed == 5


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> tuple[Path, object]:
    """A 2 x 2 sweep (privacy x seed) run through the API: its folder and the DataFrame sweep() returned."""
    sweep_dir = tmp_path_factory.mktemp("api") / "sweep"
    runs = gnnrisk.sweep({"privacy": ["none", "edgerand"], "seed": [0, 1]}, sweep_dir=sweep_dir, overrides=TINY)
    return sweep_dir, runs


@pytest.mark.slow
def test_sweep_then_load_gives_one_row_per_run(finished_sweep, tmp_path):
    sweep_dir, runs = finished_sweep
    expected = [NAMES.format(f"privacy={p},seed={s}") for p in ("none", "edgerand") for s in (0, 1)]
    assert list(runs["run"]) == expected and set(runs["status"]) == {"finished"}
    loaded = gnnrisk.report.load(sweep_dir)
    assert sorted(loaded["run"]) == sorted(expected) and len(loaded) == 4
    assert set(loaded["cfg.privacy.name"]) == {"none", "edgerand"}
    for name in expected:  # laid out as gnnrisk-run -m lays it out
        assert {"metrics.json", "config.yaml", ".hydra/overrides.yaml"} <= set(files(sweep_dir / name))
    from gnnrisk.report.cli import main as report_main

    assert report_main([str(sweep_dir), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "summary.csv").exists()
    with pytest.raises(DataError, match="does not exist"):
        gnnrisk.report.load(tmp_path / "missing")


def test_report_functions_take_the_loaded_runs(finished_sweep, tmp_path):
    runs = gnnrisk.report.load(finished_sweep[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two seeds: "fewer than 3 seeds"
        summary = gnnrisk.report.summarize(runs, ["test_auroc"])
    assert {"epsilon_mean", "test_auroc_mean", "test_auroc_ci_lo"} <= set(summary.columns) and len(summary) == 2
    assert "| edgerand |" in gnnrisk.report.to_markdown(gnnrisk.report.display_table(summary))
    assert gnnrisk.report.paired_table(summary) is not None
    paths = gnnrisk.report.plot_metric_vs_x(summary, "test_auroc", "epsilon", tmp_path)
    assert {p.suffix for p in paths} == {".png", ".pdf"} and all(p.stat().st_size > 0 for p in paths)
    assert len(gnnrisk.report.plot_metric_by_keys(summary, "test_auroc", tmp_path)) == 2
    with pytest.raises(ConfigError, match="available: "):
        gnnrisk.report.summarize(runs, ["no_such_metric"])


@pytest.mark.slow
def test_sweep_skips_finished_runs_the_cli_made(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = cli("-m", f"hydra.sweep.dir={sweep_dir}", *TINY, "privacy=none,edgerand", "seed=0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cli_runs = {p.parent.name: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")}
    assert len(cli_runs) == 2
    runs = gnnrisk.sweep(["privacy=none,edgerand", "seed=0,1"], sweep_dir=sweep_dir, overrides=TINY)
    assert len(runs) == 4 and set(runs["status"]) == {"finished"}
    for name, mtime in cli_runs.items():  # the same folder names as the command line's: skipped, untouched
        assert (sweep_dir / name / "metrics.json").stat().st_mtime_ns == mtime
        assert (sweep_dir / name / ".skipped").exists()
    new = sweep_dir / NAMES.format("privacy=none,seed=1")
    assert not (new / ".skipped").exists()
    before = new.joinpath("metrics.json").stat().st_mtime_ns
    gnnrisk.sweep({"privacy": "none", "seed": 1}, sweep_dir=sweep_dir, overrides=[*TINY, "skip_finished=false"])
    assert new.joinpath("metrics.json").stat().st_mtime_ns != before  # recomputed into the same folder


def test_sweep_goes_on_after_a_failed_run(tmp_path, capsys):
    # dpsgd_node refuses the default GCN when it starts (and a batch above the 100 training nodes: lowered)
    jobs = [["privacy=dpsgd_node", "privacy.batch_size=64"], ["privacy=none"]]
    with pytest.warns(UserWarning, match="1 of 2 runs of the sweep failed"):
        runs = gnnrisk.sweep(jobs, sweep_dir=tmp_path / "sweep", overrides=TINY)
    assert list(runs["status"]) == ["failed", "finished"]
    assert runs["error"][0].startswith("model.name='gcn' is not allowed")
    assert f"gnnrisk: error: {runs['error'][0]}" in capsys.readouterr().err  # the sweep's line, as on the CLI


def test_sweep_refuses_bad_input_before_any_run(tmp_path):
    with pytest.raises(ConfigError) as caught:
        gnnrisk.sweep(["model=gcn,transformer"], sweep_dir=tmp_path / "sweep", overrides=TINY)
    assert str(caught.value) == cli_error("-m", *TINY, "model=gcn,transformer", cwd=tmp_path)
    with pytest.raises(ConfigError, match="skip_finished"):
        gnnrisk.sweep({"seed": [0, 1]}, sweep_dir=tmp_path / "sweep", overrides=[*TINY, "skip_finished=maybe"])
    with pytest.raises(ConfigError, match="one after the other in this process"):
        gnnrisk.sweep(["hydra/launcher=parallel", "seed=0,1"], sweep_dir=tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_a_study_expands_to_the_jobs_of_its_grid():
    """`experiment=quick seed=0`: the study's grid sweeper gives its 11 jobs, named and placed as by the CLI."""
    from gnnrisk.api import _sweep_configs  # composing only: running 11 jobs is the CLI tests' business

    configs, folder = _sweep_configs([["experiment=quick", "seed=0"]])
    assert folder == "outputs/quick" and len(configs) == 11
    names = {str(c.hydra.sweep.subdir) for c in configs}
    assert "model=gcn,privacy=none,seed=0" in names and "privacy.epsilon=8,privacy=gap_ndp,seed=0" in names
    assert {str(c.hydra.runtime.choices["hydra/launcher"]) for c in configs} == {"basic"}  # in this process


def test_import_gnnrisk_stays_light():
    code = ("import sys, gnnrisk, gnnrisk.report; print(sorted(m for m in ('torch', 'pandas', 'hydra', "
            "'matplotlib', 'gnnrisk.api') if m in sys.modules)); print(callable(gnnrisk.run))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["[]", "True"], proc.stderr


@pytest.mark.slow
def test_example_runs_from_data_to_plot(tmp_path, monkeypatch):
    out = tmp_path / "example"
    monkeypatch.setenv("GNNRISK_EXAMPLE_OUT", str(out))
    monkeypatch.setenv("GNNRISK_EXAMPLE_NODES", "200")
    monkeypatch.setenv("GNNRISK_EXAMPLE_EPOCHS", "5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runpy.run_path(str(REPO / "examples" / "quick_study.py"), run_name="__main__")
    table = (out / "summary.md").read_text().splitlines()
    assert table[0].startswith("| privacy.name |") and len(table) == 2 + 4  # 3 budgets + the reference
    assert (out / "test_auroc_true_vs_epsilon.png").stat().st_size > 0
    assert len(gnnrisk.report.load(out / "sweep")) == 8 and (out / "single" / "metrics.json").exists()
