"""A report that is safe to re-run: the study's own settings remembered, the output folder owned (no stale files),
informative default metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from gnnrisk.report.build import CITY_METRICS, CLASS_METRICS, RISK_METRICS, default_metrics, make_report
from gnnrisk.report.callback import ReportOnMultirunEnd
from gnnrisk.report.cli import EXIT_OK, main
from gnnrisk.report.files import MANIFEST
from gnnrisk.report.settings import SETTINGS_FILE
from report_fixtures import config, fake_sweep, model_sweep, paired_sweep, write_run

REPO = Path(__file__).resolve().parents[2]
TABLES = ("runs.csv", "summary.csv", "summary.md", "summary.tex", "paired.csv", "paired.md", "paired.tex")


def _study(tmp_path: Path) -> Path:
    """A sweep whose report callback ran with settings that differ from every default."""
    sweep = tmp_path / "s"
    paired_sweep(sweep, {"gcn": -0.03}, n_seeds=3)
    ReportOnMultirunEnd(metrics=["test_auroc"], pareto_y="test_auroc", pareto_sense="min,min", digits=2).on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    return sweep


@pytest.mark.slow
def test_plain_report_reproduces_the_studys_own(tmp_path: Path, capsys):
    """`gnnrisk-report SWEEP --html` after the callback: the same tables byte for byte, plus the page; it says so."""
    sweep = _study(tmp_path)
    saved = json.loads((sweep / SETTINGS_FILE).read_text())["settings"]
    assert saved["metrics"] == ["test_auroc"] and saved["digits"] == 2 and saved["pareto_sense"] == "min,min"
    before = {name: (sweep / "report" / name).read_bytes() for name in TABLES}
    capsys.readouterr()
    assert main([str(sweep), "--html"]) == EXIT_OK
    assert {name: (sweep / "report" / name).read_bytes() for name in TABLES} == before
    assert (sweep / "report" / "index.html").exists()
    err = capsys.readouterr().err
    assert f"using the study's report settings from {sweep / SETTINGS_FILE}" in err and "digits=2" in err
    assert "--html overrides the study's html=False" in err


@pytest.mark.slow
def test_flags_override_remembered_settings_and_say_so(tmp_path: Path, capsys):
    """A flag wins over the remembered setting, and the output names the override; --ignore-settings drops them."""
    sweep = _study(tmp_path)
    capsys.readouterr()
    assert main([str(sweep), "--digits", "4"]) == EXIT_OK
    assert "--digits overrides the study's digits=2" in capsys.readouterr().err
    assert "0.6300 ± 0.0800" in (sweep / "report" / "summary.md").read_text()  # none: 0.55, 0.63, 0.71
    assert main([str(sweep), "--ignore-settings"]) == EXIT_OK
    assert "using the study's" not in capsys.readouterr().err
    assert "0.630 ± 0.080" in (sweep / "report" / "summary.md").read_text()  # the default 3 digits


def test_unusable_settings_file_is_a_note_not_a_failure(tmp_path: Path, capsys):
    """A settings file that is not what the callback writes: a warning, the defaults, exit 0."""
    sweep = _study(tmp_path)
    (sweep / SETTINGS_FILE).write_text(json.dumps({"settings": {"digits": "two"}}))
    assert main([str(sweep)]) == EXIT_OK
    assert "unusable value(s) for digits" in capsys.readouterr().err


@pytest.mark.slow
def test_an_earlier_plot_with_another_metric_does_not_remain(tmp_path: Path):
    """Re-running with other metrics removes the previous report's plots (listed in manifest.json), keeps the
    files the report did not write, and drops index.html when the page is not asked for again."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    out = tmp_path / "s" / "report"
    assert main([str(tmp_path / "s"), "--metrics", "test_acc", "--html"]) == EXIT_OK
    assert (out / "test_acc_vs_epsilon.png").exists() and (out / "index.html").exists()
    (out / "notes.txt").write_text("mine")
    (out / "extra_vs_time.png").write_bytes(b"mine")  # named like a plot, but not written by a report
    assert main([str(tmp_path / "s"), "--metrics", "test_auroc"]) == EXIT_OK
    names = {p.name for p in out.iterdir()}
    assert "test_auroc_vs_epsilon.png" in names and "pareto_epsilon_test_auroc.pdf" in names
    assert not names & {"test_acc_vs_epsilon.png", "test_acc_vs_epsilon.pdf", "pareto_epsilon_test_acc.png",
                        "index.html"}
    assert {"notes.txt", "extra_vs_time.png"} <= names
    assert set(json.loads((out / MANIFEST).read_text())["files"]) == names - {"notes.txt", "extra_vs_time.png",
                                                                              MANIFEST}


def test_leftovers_of_a_report_without_manifest_are_named_not_removed(tmp_path: Path, capsys):
    """A folder from before manifests: its old plots are kept (they may not be the report's) but pointed out."""
    fake_sweep(tmp_path / "s", np.random.default_rng(0))
    out = tmp_path / "s" / "report"
    out.mkdir()
    (out / "test_acc_vs_epsilon.png").write_bytes(b"old")
    assert main([str(tmp_path / "s"), "--metrics", "test_auroc"]) == EXIT_OK
    assert "look like an earlier report's" in capsys.readouterr().err
    assert (out / "test_acc_vs_epsilon.png").read_bytes() == b"old"


def test_default_metrics_prefer_auroc_for_risk_labels(tmp_path: Path):
    """Ground-truth or per-group metrics (a binary risk label): AUROC and AUPRC, not accuracy; otherwise accuracy."""
    risk = ["test_acc", "test_auroc", "test_auprc", "test_auroc_true", "test_acc_true"]
    assert default_metrics(risk)[0] == list(RISK_METRICS)
    assert default_metrics(["test_acc", "test_auroc", "test_auprc", "tpr_minority"])[0] == ["test_auroc", "test_auprc"]
    assert default_metrics(["test_acc", "test_auroc", "test_auprc", "test_f1"])[0] == list(CLASS_METRICS)
    model_sweep(tmp_path / "s")
    report = make_report(tmp_path / "s")
    assert [c for c in report.summary if c.endswith("_mean")] == ["test_auroc_true_mean", "test_auroc_mean"]
    assert any("accuracy would mostly count the negatives" in line for line in report.info)
    assert report.info and not report.problems


def test_city_forecasts_default_to_hit_rate_and_auroc_against_the_truth():
    """A city sweep's runs (hit rates, AUROC against the truth and the record) are shown by the field's metrics."""
    city = ["hit_rate_true_at_5", "hit_rate_recorded_at_5", "auroc_true", "auroc_recorded", "auprc_true",
            "train_seconds"]
    chosen, why = default_metrics(city)
    assert chosen == list(CITY_METRICS) and "city" in why
    assert default_metrics(city[:4])[0] == ["hit_rate_true_at_5", "auroc_true"]


def test_planetoid_like_sweep_keeps_accuracy(tmp_path: Path):
    """Multi-class labels without ground truth or groups (Planetoid): accuracy and AUROC."""
    for seed in range(3):
        write_run(tmp_path / "s", f"seed={seed}", config("none", None, seed),
                  {"test_acc": 0.7, "test_auroc": 0.9, "test_auprc": 0.6, "seed": seed, "epsilon": None})
    summary = make_report(tmp_path / "s").summary
    assert [c for c in summary if c.endswith("_mean")] == ["test_acc_mean", "test_auroc_mean"]


def test_make_run_writes_the_html_page():
    """`make run` runs the quick study, whose report callback writes index.html."""
    study = yaml.safe_load((REPO / "configs" / "experiment" / "quick.yaml").read_text())
    assert study["hydra"]["callbacks"]["report"]["html"] is True
    assert "experiment=quick" in (REPO / "Makefile").read_text().split("\nrun:")[1].split("\n\n")[0]
