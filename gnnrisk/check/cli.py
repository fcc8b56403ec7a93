"""`gnnrisk-check privacy=NAME [OVERRIDE ...] [--out DIR]`: the conformance check, a table and check.json.

Exit codes: 0 every check passed (or was inconclusive/skipped), 1 a check failed, 2 bad input (one line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from gnnrisk.errors import ConfigError, GnnriskError

REPORT_FILE = "check.json"


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line: `privacy=NAME`, further overrides, `--out`, `--only`."""
    parser = argparse.ArgumentParser(
        prog="gnnrisk-check", description="Check a privacy mechanism (built-in or plug-in) on a small graph: "
        "interface, determinism, accounting (dp_accounting RDP and PLD) and a canary audit at its unit.")
    parser.add_argument("overrides", nargs="*", help="privacy=NAME (required), then any GROUP.KEY=VALUE")
    parser.add_argument("--out", default=None, help="folder for check.json (default outputs/check/NAME)")
    parser.add_argument("--only", default=None, help="comma-separated checks (interface,determinism,accounting,audit)")
    return parser.parse_args(argv)


def privacy_member(overrides: list[str]) -> tuple[str, list[str]]:
    """The `privacy=NAME` override and the others; a ConfigError when it is missing."""
    chosen = [o for o in overrides if o.split("=", 1)[0] == "privacy"]
    if len(chosen) != 1 or not chosen[0].split("=", 1)[1]:
        raise ConfigError("privacy", None if not chosen else chosen, "expected one privacy=NAME, e.g. "
                          "gnnrisk-check privacy=gap_edp")
    return chosen[0].split("=", 1)[1], [o for o in overrides if o not in chosen]


def main(argv: list[str] | None = None) -> int:
    """Run the check, print the table, write check.json; the exit code says whether it passed."""
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        name, rest = privacy_member(args.overrides)
        from gnnrisk.check import CHECKS, check_mechanism

        checks = CHECKS if args.only is None else tuple(c.strip() for c in args.only.split(","))
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise ConfigError("--only", args.only, "expected a comma-separated subset of " + ", ".join(CHECKS))
        report = check_mechanism(name, rest, checks)
    except GnnriskError as err:
        print(f"gnnrisk-check: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("outputs") / "check" / name
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    print(report.table())
    print(f"report: {out / REPORT_FILE}")
    return 0 if report.passed else 1


def entry() -> None:
    """Console-script entry point: the process's logging set here, not in `main`, which callers (and tests)
    run in their own process, whose logging it must leave as it was."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("gnnrisk.pipeline").setLevel(logging.ERROR)  # per-run warnings: the table says what matters
    sys.exit(main())


if __name__ == "__main__":
    entry()
