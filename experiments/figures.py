"""`make figures`: every figure that README.md, docs/ and experiments/*.md quote, rewritten from the committed result files.

A page names its sources and marks each figure it quotes with HTML comments, which GitHub and the
documentation site do not show:

    <!-- figures q = experiments/quick_figures/summary.csv -->

    ... the non-private GCN <!-- fig q[gcn,none].test_auroc_true_mean -->0.678<!-- /fig --> ...
    ... a gain of <!-- fig q[gcn,none].test_auroc_true_mean - q[mlp,none].test_auroc_true_mean :+.3f -->+0.108<!-- /fig -->

- `<!-- figures NAME = PATH -->`, in a paragraph of its own, declares a source: a CSV in the
  repository (PATH from its root) that git does not ignore, i.e. a committed result file, not a sweep
  folder under outputs/.
- `<!-- fig EXPR -->TEXT<!-- /fig -->` (on one line, not at its start) is a quoted figure: TEXT is
  EXPR's value, formatted with the Python format spec after the last ` :` (default `.3f`). EXPR is
  arithmetic (`+ - * /`, parentheses, numbers, `abs`, `min`, `max`, and `ceil(x, digits)`, rounded up
  as spent budgets are quoted) over cells `NAME[ROW].COLUMN`. ROW picks exactly one row: values
  matched in order against the CSV's key columns (those before `n_runs` or the first `*_mean` column;
  `gcn,gap_edp,8` = model.name, privacy.name, privacy.epsilon; an empty value matches an empty cell)
  or `KEY=VALUE` pairs (`privacy=none` matches the column `privacy` or `privacy.name`).
- A page that declares a source named `report` (a `gnnrisk-report` summary.csv) also gets its
  `<!-- gnnrisk-report:summary:begin -->` ... `end` and `paired` regions rebuilt from it, exactly as
  `gnnrisk-report SWEEP_DIR --into PAGE` writes them from the sweep folder.

Markers inside code (fenced blocks, inline code spans) are text, not figures.

Usage:  python experiments/figures.py            (rewrite every marked figure; `make figures`)
        python experiments/figures.py --check    (change nothing; list each figure that differs from its source, exit 1)
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DECLARATION = re.compile(r"<!--\s*figures\s+(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<path>\S+)\s*-->")
FIGURE = re.compile(r"<!--\s*fig\s+(?P<spec>(?:(?!-->).)+?)\s*-->(?P<text>.*?)<!--\s*/fig\s*-->")
CELL = re.compile(r"(?P<name>[A-Za-z_]\w*)\[(?P<row>[^\]]*)\]\.(?P<column>[\w.]+)")
CODE_SPAN = re.compile(r"(`+).+?\1")
FORMAT_SPEC = re.compile(r"^[<>=^]?[-+ ]?#?0?\d*[,_]?(?:\.\d+)?[eEfFgGn%]?$")
DEFAULT_FORMAT = ".3f"
REPORT_SOURCE = "report"


def ceil(value: float, digits: float = 0) -> float:
    """`value` rounded up to `digits` decimals: how a spent privacy budget is quoted (never below what was spent)."""
    scale = 10 ** int(digits)
    return math.ceil(round(value * scale, 9)) / scale


FUNCTIONS: dict[str, Callable[..., float]] = {"abs": abs, "min": min, "max": max, "ceil": ceil}
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class FigureError(ValueError):
    """A marker that cannot be evaluated: its page and line, and what is wrong."""


@dataclass
class Change:
    """One quoted figure (or report region) whose text differs from what its source gives."""

    page: str
    line: int
    what: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.what}: {self.old!r} -> {self.new!r}"


def pages(repo: Path = REPO) -> list[Path]:
    """The pages that may quote figures: README.md, every docs/ page, every experiments/*.md write-up."""
    found = [repo / "README.md", *sorted((repo / "docs").rglob("*.md")), *sorted((repo / "experiments").glob("*.md"))]
    return [p for p in found if p.is_file()]


# --- sources -------------------------------------------------------------------------------------------

def key_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that name a row: those before `n_runs` or the first `*_mean` column (else the first column)."""
    for i, column in enumerate(frame.columns):
        if column == "n_runs" or column.endswith("_mean"):
            return list(frame.columns[:i]) or [frame.columns[0]]
    return [frame.columns[0]]


def _same(wanted: str, cell: object) -> bool:
    """Whether a selector value names a CSV cell: numbers as numbers (`8` = `8.0`), empty = an empty cell."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() in ("", "–", "-"):
        return wanted.strip() in ("", "–", "-")
    try:
        return float(wanted) == float(str(cell))
    except ValueError:
        return wanted.strip() == str(cell).strip()


class Source:
    """A committed result CSV and the rows its figures are read from."""

    def __init__(self, path: Path, repo: Path = REPO) -> None:
        self.path = path
        self.name = path.relative_to(repo).as_posix()
        self.frame = pd.read_csv(path, keep_default_na=True)
        self.keys = key_columns(self.frame)

    def row(self, selector: str) -> pd.Series:
        """The one row the selector names."""
        parts = [p.strip() for p in selector.split(",")] if selector.strip() else []
        mask = pd.Series(True, index=self.frame.index)
        for position, part in enumerate(parts):
            if "=" in part:
                key, _, value = part.partition("=")
                key = key.strip()
                column = key if key in self.frame.columns else f"{key}.name"
                if column not in self.frame.columns:
                    raise FigureError(f"{self.name} has no column {key!r} (columns: {', '.join(self.keys)})")
            else:
                if position >= len(self.keys):
                    raise FigureError(f"[{selector}] gives more values than {self.name} has key columns "
                                      f"({', '.join(self.keys)})")
                column, value = self.keys[position], part
            mask &= self.frame[column].map(lambda cell, v=value: _same(v, cell))
        rows = self.frame[mask]
        if len(rows) != 1:
            found = "; ".join(",".join(str(r[k]) for k in self.keys) for _, r in rows.head(5).iterrows())
            raise FigureError(f"[{selector}] matches {len(rows)} rows of {self.name}, not one"
                              + (f" ({found})" if found else f" (key columns: {', '.join(self.keys)})"))
        return rows.iloc[0]

    def cell(self, selector: str, column: str) -> float:
        """The number in one cell."""
        if column not in self.frame.columns:
            raise FigureError(f"{self.name} has no column {column!r}")
        value = self.row(selector)[column]
        try:
            number = float(value)
        except (TypeError, ValueError) as err:
            raise FigureError(f"{self.name} [{selector}].{column} is {value!r}, not a number") from err
        if math.isnan(number):
            raise FigureError(f"{self.name} [{selector}].{column} is empty")
        return number


def _ignored(path: Path, repo: Path) -> bool:
    """Whether git ignores the path (a sweep's outputs/ folder, say): such a file is never committed."""
    try:
        result = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=repo, capture_output=True)
    except OSError:
        return False
    return result.returncode == 0


def load_sources(text: str, page: str, repo: Path = REPO, cache: dict[Path, Source] | None = None) -> dict[str, Source]:
    """The sources a page declares, by name."""
    cache = {} if cache is None else cache
    sources: dict[str, Source] = {}
    lines = text.split("\n")
    for number, line in _prose_lines(text):
        for match in DECLARATION.finditer(_without_code_spans(line)):
            path = (repo / match["path"]).resolve()
            where = f"{page}:{number}"
            if not _own_paragraph(lines, number - 1):
                raise FigureError(f"{where}: a source declaration needs a paragraph of its own (blank lines "
                                  f"around it), or it would show inside the text on GitHub")
            if repo.resolve() not in path.parents or not path.is_file():
                raise FigureError(f"{where}: source {match['path']} is not a file in the repository")
            if path.suffix != ".csv":
                raise FigureError(f"{where}: source {match['path']} is not a CSV file")
            if _ignored(path, repo):
                raise FigureError(f"{where}: source {match['path']} is ignored by git, so it is not a committed "
                                  f"result file (copy the report's CSV into experiments/NAME_figures/)")
            if match["name"] in sources and sources[match["name"]].path != path:
                raise FigureError(f"{where}: source {match['name']!r} declared twice")
            if path not in cache:
                cache[path] = Source(path, repo)
            sources[match["name"]] = cache[path]
    return sources


# --- figures -------------------------------------------------------------------------------------------

def _prose_lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    fenced: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.lstrip()
        fence = re.match(r"(`{3,}|~{3,})", stripped)
        if fence:
            if fenced is None:
                fenced = fence[1][0] * len(fence[1])
                continue
            if stripped.startswith(fenced):
                fenced = None
                continue
        if fenced is None:
            yield number, line


def _own_paragraph(lines: list[str], index: int) -> bool:
    """Whether the declaration on line `index` stands alone: only declarations between blank lines."""
    def alone(i: int) -> bool:
        return not (0 <= i < len(lines)) or not lines[i].strip() or bool(DECLARATION.fullmatch(lines[i].strip()))

    return DECLARATION.fullmatch(lines[index].strip()) is not None and alone(index - 1) and alone(index + 1)


def _without_code_spans(line: str) -> str:
    """The line with its inline code spans blanked out (same length, so positions still match)."""
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def split_spec(spec: str) -> tuple[str, str]:
    """`EXPR :FORMAT` -> (EXPR, FORMAT); without a format the default."""
    expr, colon, fmt = spec.rpartition(":")
    if colon and FORMAT_SPEC.match(fmt.strip()) and expr.strip():
        return expr.strip(), fmt.strip()
    return spec.strip(), DEFAULT_FORMAT


def _evaluate(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, values)
        return -value if isinstance(node.op, ast.USub) else value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
            and not node.keywords):
        return float(FUNCTIONS[node.func.id](*(_evaluate(a, values) for a in node.args)))
    raise FigureError(f"not allowed in a figure: {ast.unparse(node)!r} (cells NAME[ROW].COLUMN, numbers, "
                      f"+ - * /, abs, min, max, ceil)")


def evaluate(expr: str, sources: dict[str, Source]) -> float:
    """The value of a figure's expression over the page's sources."""
    values: dict[str, float] = {}

    def cell(match: re.Match) -> str:
        if match["name"] not in sources:
            raise FigureError(f"no source {match['name']!r} declared on this page "
                              f"(<!-- figures {match['name']} = experiments/.../summary.csv -->)")
        placeholder = f"_cell{len(values)}"
        values[placeholder] = sources[match["name"]].cell(match["row"], match["column"])
        return placeholder

    replaced = CELL.sub(cell, expr)
    if not values:
        raise FigureError(f"{expr!r} reads no cell NAME[ROW].COLUMN")
    try:
        tree = ast.parse(replaced, mode="eval")
    except SyntaxError as err:
        raise FigureError(f"{expr!r} is not an expression") from err
    try:
        return _evaluate(tree, values)
    except ZeroDivisionError as err:
        raise FigureError(f"{expr!r} divides by zero") from err


def render(value: float, fmt: str) -> str:
    """The figure as the page shows it."""
    try:
        return format(value, fmt)
    except ValueError as err:
        raise FigureError(f"{fmt!r} is not a format spec for a number") from err


def rewrite_figures(text: str, sources: dict[str, Source], page: str) -> tuple[str, list[Change]]:
    """The page with every marked figure recomputed, and the figures that changed."""
    lines = text.split("\n")
    changes: list[Change] = []
    for number, line in _prose_lines(text):
        masked = _without_code_spans(line)
        out, pos = [], 0
        for match in FIGURE.finditer(masked):
            if not masked[:match.start()].strip():
                raise FigureError(f"{page}:{number}: a figure marker must not start a line (GitHub would read "
                                  f"the line as an HTML block and break the paragraph): put a word before it")
            expr, fmt = split_spec(match["spec"])
            try:
                new = render(evaluate(expr, sources), fmt)
            except FigureError as err:
                raise FigureError(f"{page}:{number}: {err}") from None
            old = line[match.start("text"):match.end("text")]
            if old != new:
                changes.append(Change(page, number, expr, old, new))
            out += [line[pos:match.start("text")], new]
            pos = match.end("text")
        if out:
            lines[number - 1] = "".join(out) + line[pos:]
    return "\n".join(lines), changes


def rewrite_regions(text: str, sources: dict[str, Source], page: str) -> tuple[str, list[Change]]:
    """The page with its gnnrisk-report regions rebuilt from its `report` source (unchanged without one)."""
    from gnnrisk.report.tables import display_table, paired_table, to_markdown
    from gnnrisk.report.writeup import REGIONS, markers, replace_regions

    if REPORT_SOURCE not in sources or not any(markers(r)[0] in text for r in REGIONS):
        return text, []
    summary = sources[REPORT_SOURCE].frame
    tables = {"summary": to_markdown(display_table(summary))}
    paired = paired_table(summary)
    if paired is not None:
        tables["paired"] = to_markdown(paired)
    try:
        new = replace_regions(text, tables, page)
    except Exception as err:  # DataError: a malformed region
        raise FigureError(str(err)) from None
    changes = []
    for region in REGIONS:
        begin = markers(region)[0]
        before, after = _region(text, region).split("\n"), _region(new, region).split("\n")
        if begin in text and before != after:
            start = text[:text.index(begin)].count("\n") + 2
            for offset, (old_row, new_row) in enumerate(zip(before, after)):
                if old_row != new_row:
                    changes.append(Change(page, start + offset, f"{region} table row from {sources[REPORT_SOURCE].name}",
                                          old_row, new_row))
            if len(before) != len(after):
                changes.append(Change(page, start, f"{region} table from {sources[REPORT_SOURCE].name}",
                                      f"{len(before)} lines", f"{len(after)} lines"))
    return new, changes


def _region(text: str, region: str) -> str:
    from gnnrisk.report.writeup import markers

    begin, end = markers(region)
    return text.split(begin, 1)[1].split(end, 1)[0] if begin in text and end in text else ""


def update_page(path: Path, repo: Path = REPO, cache: dict[Path, Source] | None = None) -> tuple[str, list[Change], int]:
    """A page's text with every figure recomputed, the changes, and how many figures it marks."""
    page = path.relative_to(repo).as_posix()
    text = path.read_text()
    sources = load_sources(text, page, repo, cache)
    new, changes = rewrite_figures(text, sources, page)
    new, region_changes = rewrite_regions(new, sources, page)
    count = sum(len(FIGURE.findall(_without_code_spans(line))) for _, line in _prose_lines(text))
    return new, changes + region_changes, count


def run(check: bool, repo: Path = REPO, paths: list[Path] | None = None) -> tuple[list[Change], int]:
    """Recompute every page's figures; write the changed pages unless `check`. The changes and the figure count."""
    cache: dict[Path, Source] = {}
    changes: list[Change] = []
    total = 0
    for path in pages(repo) if paths is None else paths:
        new, page_changes, count = update_page(path, repo, cache)
        total += count
        changes += page_changes
        if page_changes and not check:
            path.write_text(new)
    return changes, total


def main(argv: list[str] | None = None) -> int:
    """`make figures` (rewrite) and its check mode (exit 1 when a quoted figure differs from its source)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a figure is stale")
    args = parser.parse_args(argv)
    try:
        changes, total = run(args.check)
    except FigureError as err:
        print(f"figures: error: {err}", file=sys.stderr)
        return 2
    for change in changes:
        print(("stale: " if args.check else "updated: ") + str(change))
    if args.check:
        print(f"{total} quoted figures checked, {len(changes)} differ from their source"
              + ("; run `make figures`" if changes else ""))
        return 1 if changes else 0
    print(f"{total} quoted figures, {len(changes)} rewritten from their source")
    return 0


if __name__ == "__main__":
    sys.exit(main())
