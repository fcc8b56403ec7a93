"""A Hydra callback that reports on the sweep folder when a sweep ends (what `gnnrisk-report` does)."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console

from gnnrisk.errors import ConfigError, GnnriskError, check_number
from gnnrisk.report.build import make_report
from gnnrisk.report.cli import print_report
from gnnrisk.report.settings import ReportSettings, parse_sense, save_settings

FIELD = "hydra.callbacks.report."

log = logging.getLogger(__name__)


class ReportOnMultirunEnd(Callback):
    """At the end of a multirun: tables and plots of every run in `hydra.sweep.dir`, tables printed.

    `into`: a Markdown write-up whose marked regions are rewritten with summary.md and paired.md (`--into`);
    `html`: also the one-page index.html (`--html`); `digits`: the tables' decimals (`--digits`).
    The settings are recorded in SWEEP/report_settings.json, so that `gnnrisk-report SWEEP` reproduces this report.
    """

    def __init__(self, metrics: Sequence[str] | None = None, x: str | None = None, pareto_x: str | None = None,
                 pareto_y: str | None = None, pareto_sense: str = "auto,auto", out: str | None = None,
                 into: str | None = None, html: bool = False, digits: int = 3):
        self.metrics = list(metrics) if metrics is not None else None
        self.x, self.pareto_x, self.pareto_y, self.out, self.into = x, pareto_x, pareto_y, out, into
        self.sense_text = str(pareto_sense)
        self.pareto_sense = parse_sense(pareto_sense, FIELD + "pareto_sense")
        self.html = bool(html)
        self.digits = int(check_number("hydra.callbacks.report.digits", digits, low=0, high=10, integer=True))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the report into SWEEP_DIR/report (or `out`), its tables into `into` if given, and print them."""
        settings = ReportSettings(self.metrics, self.x, self.pareto_x, self.pareto_y, self.sense_text, self.html,
                                  self.digits, self.into)
        try:
            save_settings(config.hydra.sweep.dir, settings)
            report = make_report(config.hydra.sweep.dir, self.out, self.metrics, self.x, self.pareto_x,
                                 self.pareto_y, self.pareto_sense, self.into, html=self.html, digits=self.digits)
        except ConfigError as err:
            log.error("report: %s", ConfigError(FIELD + err.field, err.value, err.allowed))
            return
        except (GnnriskError, OSError) as err:
            log.error("report: %s", err)
            return
        print_report(report, Console(width=160), Console(stderr=True, width=160), self.digits)
