"""`gnnrisk-report SWEEP_DIR --html`: one self-contained page (index.html) with every table and plot of a report.

The plots are embedded as base64 PNG (the page needs nothing else to show them; each links its PDF next to
it), the tables are the same text cells as summary.md and paired.md with their headers in words and keys.
No network, no script: the page can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from gnnrisk.report.aggregate import INFO_COLUMNS
from gnnrisk.report.collect import FINISHED
from gnnrisk.report.labels import label
from gnnrisk.report.tables import (PAIRED_TITLE, SUMMARY_TITLE, as_caption, display_table, failed_runs, footnotes,
                                   key_columns, paired_table, summary_metrics)
from gnnrisk.utils.files import write_text_atomic

if TYPE_CHECKING:
    from gnnrisk.report.build import Report

HTML_FILE = "index.html"
RISE = " rise vs next lower ε"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 0.4em; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f4f4f4; text-align: left; } th code { font-weight: normal; color: #666; font-size: 0.85em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { display: inline-block; margin: 0.5em 1em 1.5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.85em; color: #555; }
.problem { color: #a00; } .note { color: #7a5b00; } .info { color: #555; } .scroll { overflow-x: auto; }
"""


def header_html(column: str) -> str:
    """A table header: the name in words, with the key under it when the words differ (`Δ` and rise columns too)."""
    if column == "n":
        return "n"
    if column.startswith("Δ "):
        key, words = column[2:], "Δ " + label(column[2:])
    elif column.endswith(RISE):
        key = column[: -len(RISE)]
        words = label(key) + RISE
    else:
        key, words = column, label(column)
    if words == key:
        return html.escape(words)
    return f"{html.escape(words)}<br><code>{html.escape(key)}</code>"


def table_html(table: pd.DataFrame, caption: str | None = None, n_keys: int | None = None) -> str:
    """A table of text cells: headers in words (`header_html`), the cells after the first `n_keys` right-aligned."""
    n_keys = n_keys if n_keys is not None else (list(table.columns).index("n") if "n" in table else len(table.columns))
    rows = []
    for row in table.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if i >= n_keys else ""}>{html.escape(str(cell))}</td>'
                        for i, cell in enumerate(row))
        rows.append(f"<tr>{cells}</tr>")
    head = "".join(f"<th>{header_html(str(c))}</th>" for c in table.columns)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def figure_html(png: Path) -> str:
    """A plot embedded as base64 PNG, captioned with its file name and a link to its PDF (relative) if written."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    pdf = png.with_suffix(".pdf")
    link = f' · <a href="{html.escape(pdf.name)}">PDF</a>' if pdf.exists() else ""
    name = html.escape(png.name)
    return (f'<figure data-file="{name}"><img src="data:image/png;base64,{data}" alt="{name}">'
            f"<figcaption><code>{name}</code>{link}</figcaption></figure>")


def runs_table(report: Report) -> tuple[pd.DataFrame, int]:
    """The runs as text: folder, status, the group keys and the shown metrics (runs.csv holds every field);
    and how many of its columns are not numbers."""
    runs = report.runs
    keys, metrics = [], []
    if report.summary is not None and not report.summary.empty:
        keys = [f"cfg.{k}" for k in key_columns(report.summary) if k not in INFO_COLUMNS]
        metrics = summary_metrics(report.summary)
    cols = ["run", "status"] + [c for c in keys + ["cfg.seed"] + metrics if c in runs]
    shown = runs[cols].copy()
    for col in cols:
        shown[col] = shown[col].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else
                                    (f"{v:.4g}" if isinstance(v, float) else str(v)))
    return shown.rename(columns={c: c.removeprefix("cfg.") for c in cols}), len([c for c in cols if c not in metrics])


def _list(items: list[str], css: str) -> str:
    """A bulleted list of messages."""
    return "<ul>" + "".join(f'<li class="{css}">{html.escape(i)}</li>' for i in items) + "</ul>" if items else ""


def page_html(report: Report, sweep_dir: Path, digits: int = 3) -> str:
    """The whole page: counts, problems and notes, the summary, the paired differences, failures, plots, runs."""
    runs = report.runs
    finished = int((runs["status"] == FINISHED).sum())
    parts = [f"<h1>gnnrisk report: {html.escape(sweep_dir.name or str(sweep_dir))}</h1>",
             f"<p>Sweep folder <code>{html.escape(str(sweep_dir))}</code>: {len(runs)} run folders, {finished} "
             f"finished. Groups are runs that differ only by seed; every interval is the 95% Student-t interval "
             f"of the mean over seeds (the tables' <code>[lo, hi]</code>, the plots' bands and error bars).</p>"]
    parts += [_list(report.problems, "problem"), _list(report.notes, "note"), _list(report.info, "info")]
    if report.summary is not None and not report.summary.empty:
        shown = display_table(report.summary, digits)
        parts += ['<h2 id="summary">Summary</h2>',
                  table_html(shown, " ".join([as_caption(SUMMARY_TITLE), *footnotes(shown)]))]
        paired = paired_table(report.summary, digits)
        if paired is not None:
            parts += ['<h2 id="paired">Paired differences to the non-private run</h2>',
                      table_html(paired, as_caption(PAIRED_TITLE))]
    bad = failed_runs(runs)
    if len(bad):
        parts += [f'<h2 id="failed">Failed or unfinished runs ({len(bad)})</h2>',
                  table_html(bad.fillna("").astype(str), n_keys=len(bad.columns))]
    pngs = [p for p in report.written if p.suffix == ".png" and p.exists()]
    if pngs:
        parts += ['<h2 id="plots">Plots</h2>', "<div>" + "".join(figure_html(p) for p in pngs) + "</div>"]
    runs_frame, n_text = runs_table(report)
    parts += [f'<h2 id="runs">Runs</h2><details><summary>{len(runs)} run folders (runs.csv has every config '
              f"value and metric)</summary>", table_html(runs_frame, n_keys=n_text), "</details>"]
    body = "\n".join(p for p in parts if p)
    title = html.escape(f"gnnrisk report: {sweep_dir.name or sweep_dir}")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _umask() -> int:
    """The process's file-creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_html(report: Report, out_dir: Path, sweep_dir: Path, digits: int = 3) -> Path:
    """Write out_dir/index.html (see `page_html`), pure ASCII (other characters as references), readable like
    any new file (the atomic write alone would leave it private to its owner: it is meant to be shared)."""
    text = page_html(report, Path(sweep_dir), digits).encode("ascii", "xmlcharrefreplace").decode("ascii")
    path = write_text_atomic(Path(out_dir) / HTML_FILE, text)
    path.chmod(0o666 & ~_umask())
    return path
