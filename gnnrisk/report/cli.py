"""`gnnrisk-report SWEEP_DIR`: tables and plots of every run in a sweep folder (and with --html one page of all)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gnnrisk import __version__
from gnnrisk.errors import ConfigError, GnnriskError, error_lines
from gnnrisk.report.build import CHECKED, Report, make_report
from gnnrisk.report.settings import SETTINGS_FILE, load_settings, merge, parse_sense  # noqa: F401 (callback)
from gnnrisk.report.tables import (PAIRED_TITLE, SUMMARY_TITLE, display_table, failed_runs, footnotes,
                                   paired_table)

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


class UsageError(GnnriskError):
    """The command line itself is malformed (an unknown option, a missing folder argument)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a malformed command line raises UsageError (one line, no usage block) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (gnnrisk-report --help lists the options)")


def _names(text: str, field: str = "metrics") -> list[str]:
    """A comma-separated list of names; a ConfigError naming `field` when it holds none."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError(field, text, "expected comma-separated names, e.g. test_auroc,test_auprc")
    return names


def _digits(text: str, field: str = "digits") -> int:
    """A number of decimals, 0 to 10; a ConfigError naming `field` otherwise."""
    if not text.isdigit() or int(text) > 10:
        raise ConfigError(field, text, "expected an integer from 0 to 10")
    return int(text)


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = _Parser(prog="gnnrisk-report", description=__doc__.split(":", 1)[1].strip(),
                epilog=f"A study's report callback records its settings in SWEEP_DIR/{SETTINGS_FILE}; without flags "
                       f"the report uses them (each flag given overrides its setting).")
    p.add_argument("sweep_dir", help="a sweep folder (hydra.sweep.dir) or any folder of run folders")
    p.add_argument("--version", action="version", version=f"gnnrisk {__version__}")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics to tabulate and plot (default: the study's, else for binary risk "
                        "labels test_auroc_true,test_auroc,test_auprc, for other labels test_acc,test_auroc)")
    p.add_argument("--x", default=None,
                   help="x axis of the metric plots (default: epsilon, the spent budget; without one, point plots "
                        "by the first varied key); a text key such as model.name: point plots by it")
    p.add_argument("--pareto-x", default=None, help="x axis of the Pareto plot (default: epsilon)")
    p.add_argument("--pareto-y", default=None, help="y axis of the Pareto plot (default: the first metric)")
    p.add_argument("--pareto-sense", default=None,
                   help="which direction is better on the Pareto x,y axes, e.g. min,max (default: auto)")
    p.add_argument("--out", default=None, help="output folder (default: SWEEP_DIR/report)")
    p.add_argument("--digits", default=None,
                   help="decimals in the printed and written tables and the --html page (0-10, default 3)")
    p.add_argument("--into", default=None, metavar="PATH.md",
                   help="a Markdown write-up: rewrite the lines between its <!-- gnnrisk-report:summary:begin --> "
                        "and <!-- gnnrisk-report:summary:end --> markers with summary.md, and those between the "
                        ":paired: markers with paired.md; the rest of the file is kept as it is")
    p.add_argument("--html", action=argparse.BooleanOptionalAction, default=None,
                   help="also write index.html into the output folder: every table and plot of the sweep on one "
                        "self-contained page (plots embedded), to open in a browser or share")
    p.add_argument("--ignore-settings", action="store_true",
                   help=f"ignore the study's remembered report settings (SWEEP_DIR/{SETTINGS_FILE})")
    return p


def _print_table(console: Console, shown: pd.DataFrame, title: str) -> None:
    """A table of text cells, keys left-aligned and numbers right-aligned (cells are not rich markup)."""
    table = Table(title=Text(title), show_header=True)
    n_keys = list(shown.columns).index("n")
    for i, col in enumerate(shown.columns):
        table.add_column(Text(col), justify="left" if i < n_keys else "right")
    for row in shown.itertuples(index=False):
        table.add_row(*(Text(str(cell)) for cell in row))
    console.print(table)


def print_report(report: Report, console: Console, errors: Console, digits: int = 3) -> None:
    """The grouped table, the paired differences, the failed runs, the files written, and any notes or problems."""
    if report.summary is not None and not report.summary.empty:
        shown = display_table(report.summary, digits)
        _print_table(console, shown, SUMMARY_TITLE)
        for note in footnotes(shown):
            console.print(Text(note))
        paired = paired_table(report.summary, digits)
        if paired is not None:
            _print_table(console, paired, PAIRED_TITLE)
    bad = failed_runs(report.runs)
    if len(bad):
        table = Table(title=f"{len(bad)} run(s) failed or did not finish", show_header=True)
        for col in ("run", "status", "error"):
            table.add_column(col)
        for row in bad.itertuples(index=False):
            table.add_row(row.run, row.status, "" if pd.isna(row.error) else f"{row.error_type}: {row.error}")
        console.print(table)
    finished = int((report.runs["status"] == "finished").sum())
    console.print(f"{len(report.runs)} runs ({finished} finished); wrote {len(report.written)} files to "
                  f"{report.written[0].parent if report.written else '-'}")
    for line in report.info:
        errors.print(f"gnnrisk-report: {line}", markup=False, highlight=False)
    for note in report.notes:
        errors.print(f"gnnrisk-report: warning: {note}", style="yellow", markup=False)
    for problem in report.problems:
        errors.print(f"gnnrisk-report: error: {problem}", style="red", markup=False)


def _flags(args: argparse.Namespace) -> dict[str, object]:
    """The report settings given on the command line, checked (a ConfigError names the flag); None = not given."""
    return {"metrics": None if args.metrics is None else _names(args.metrics, "--metrics"), "x": args.x,
            "pareto_x": args.pareto_x, "pareto_y": args.pareto_y, "into": args.into, "html": args.html,
            "pareto_sense": None if args.pareto_sense is None else _sense(args.pareto_sense),
            "digits": None if args.digits is None else _digits(args.digits, "--digits")}


def _sense(text: str) -> str:
    """A `--pareto-sense` value, checked."""
    parse_sense(text, "--pareto-sense")
    return text


def _as_flag(err: ConfigError) -> ConfigError:
    """A ConfigError about a report setting, named as its command-line flag (`metrics` -> `--metrics`)."""
    if err.field in CHECKED or err.field == "out":
        return ConfigError("--" + err.field.replace("_", "-"), err.value, err.allowed)
    return err


def run(argv: list[str] | None, console: Console, errors: Console) -> int:
    """Parse, merge the flags with the study's remembered settings, check every input, then write the report."""
    args = parser().parse_args(argv)
    flags = _flags(args)
    remembered, problem = (None, None) if args.ignore_settings else load_settings(args.sweep_dir)
    settings, given, lines = merge(flags, remembered, Path(args.sweep_dir) / SETTINGS_FILE)
    lines = ([problem] if problem else []) + lines
    try:
        report = make_report(args.sweep_dir, args.out, settings.metrics, settings.x, settings.pareto_x,
                             settings.pareto_y, parse_sense(settings.pareto_sense), settings.into,
                             html=settings.html, digits=settings.digits, strict=given & set(CHECKED), info=lines)
    except ConfigError as err:
        raise _as_flag(err) from None
    print_report(report, console, errors, settings.digits)
    return EXIT_PARTIAL if report.problems else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; exit 0 = all produced, 1 = the data did not allow some requested part,
    2 = bad input (one line naming the flag; nothing written) or nothing to report."""
    errors = Console(stderr=True, width=160)
    try:
        return run(argv, Console(width=160), errors)
    except GnnriskError as err:
        for line in error_lines(err):
            print(f"gnnrisk-report: error: {line}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
