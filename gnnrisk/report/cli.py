"""`gnnrisk-report SWEEP_DIR`: tables and plots of every run in a sweep folder (and with --html one page of all)."""

from __future__ import annotations

import argparse
import sys

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gnnrisk.errors import GnnriskError
from gnnrisk.report.build import Report, make_report
from gnnrisk.report.tables import PAIRED_TITLE, SUMMARY_TITLE, display_table, failed_runs, paired_table

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


def _names(text: str) -> list[str]:
    """A comma-separated list of names."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _digits(text: str) -> int:
    """A number of decimals, 0 to 10."""
    if not text.isdigit() or int(text) > 10:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 10, got {text!r}")
    return int(text)


def parse_sense(text: str) -> tuple[str | None, str | None]:
    """`min,max`-style optimisation senses of the Pareto x and y axes (`auto` guesses from the name)."""
    parts = _names(text)
    if len(parts) != 2 or any(p not in ("min", "max", "auto") for p in parts):
        raise argparse.ArgumentTypeError("expected two of min/max/auto, e.g. min,max")
    return tuple(None if p == "auto" else p for p in parts)  # type: ignore[return-value]


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="gnnrisk-report", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("sweep_dir", help="a sweep folder (hydra.sweep.dir) or any folder of run folders")
    p.add_argument("--metrics", type=_names, default=None,
                   help="comma-separated metrics to tabulate and plot (default: test_acc,test_auroc,test_auroc_true)")
    p.add_argument("--x", default=None,
                   help="x axis of the metric plots (default: epsilon, the spent budget; without one, point plots "
                        "by the first varied key); a text key such as model.name: point plots by it")
    p.add_argument("--pareto-x", default=None, help="x axis of the Pareto plot (default: epsilon)")
    p.add_argument("--pareto-y", default=None, help="y axis of the Pareto plot (default: the first metric)")
    p.add_argument("--pareto-sense", type=parse_sense, default=(None, None),
                   help="which direction is better on the Pareto x,y axes, e.g. min,max (default: auto)")
    p.add_argument("--out", default=None, help="output folder (default: SWEEP_DIR/report)")
    p.add_argument("--digits", type=_digits, default=3,
                   help="decimals in the printed table and the --html page (0-10)")
    p.add_argument("--into", default=None, metavar="PATH.md",
                   help="a Markdown write-up: rewrite the lines between its <!-- gnnrisk-report:summary:begin --> "
                        "and <!-- gnnrisk-report:summary:end --> markers with summary.md, and those between the "
                        ":paired: markers with paired.md; the rest of the file is kept as it is")
    p.add_argument("--html", action="store_true",
                   help="also write index.html into the output folder: every table and plot of the sweep on one "
                        "self-contained page (plots embedded), to open in a browser or share")
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
        _print_table(console, display_table(report.summary, digits), SUMMARY_TITLE)
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
    for note in report.notes:
        errors.print(f"gnnrisk-report: warning: {note}", style="yellow", markup=False)
    for problem in report.problems:
        errors.print(f"gnnrisk-report: error: {problem}", style="red", markup=False)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; exit 0 = all produced, 1 = some requested parts missing, 2 = nothing."""
    args = parser().parse_args(argv)
    console = Console(width=160)
    try:
        report = make_report(args.sweep_dir, args.out, args.metrics, args.x, args.pareto_x, args.pareto_y,
                             args.pareto_sense, args.into, html=args.html, digits=args.digits)
    except GnnriskError as err:
        print(f"gnnrisk-report: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print_report(report, console, Console(stderr=True, width=160), args.digits)
    return EXIT_PARTIAL if report.problems else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
