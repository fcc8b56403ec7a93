"""Result tables: all runs as CSV; the grouped summary and the paired differences as CSV, Markdown and LaTeX."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from gnnrisk.report.aggregate import BUDGETS, CI_LEVEL, N_RUNS, NONPRIVATE, PRIVACY_NAME, label
from gnnrisk.report.collect import BROKEN, FAILED, INCOMPLETE
from gnnrisk.report.ranges import CLIP_MARK, CLIPPED_NOTE, clip_interval
from gnnrisk.utils.files import write_text_atomic

MISSING = "–"
# Privacy budgets are shown rounded up: a table must never show less than what a mechanism spent.
ROUND_UP = BUDGETS
LEVEL = f"{CI_LEVEL:.0%}"
SUMMARY_TITLE = f"mean ± std (ddof=1) over seeds [{LEVEL} Student-t CI of the mean]; std unbiased; n = seeds"
PAIRED_TITLE = (f"paired difference to the non-private run of the same model and seed (private − none): "
                f"mean [{LEVEL} t-interval]; * = interval excludes 0; n = pairs; last column: the same mechanism "
                f"minus itself at the next lower epsilon, same seed")
# pdflatex without extra packages knows ± but not these; LaTeX comments start at %
LATEX_TEXT = {"Δ": r"$\Delta$", "−": "$-$", "ε": r"$\varepsilon$", CLIP_MARK: r"$^\dagger$"}
FOOTNOTES = "footnotes"   # a text table's `attrs` key: sentences that explain its marks (written under it)
LATEX_CAPTION = str.maketrans({c: "\\" + c for c in "%&#_$"})
PAIRED_FILES = ("paired.csv", "paired.md", "paired.tex")


def key_columns(summary: pd.DataFrame) -> list[str]:
    """The summary's group-key columns: everything before `n_runs`."""
    return list(summary.columns[: list(summary.columns).index(N_RUNS)])


def summary_metrics(summary: pd.DataFrame) -> list[str]:
    """The metrics the summary holds, in column order (each has a `<m>_count`; differences have `_diff_n`)."""
    return [c[: -len("_count")] for c in summary.columns if c.endswith("_count")]


def paired_metrics(summary: pd.DataFrame) -> list[str]:
    """The metrics with a paired difference to the non-private reference."""
    return [m for m in summary_metrics(summary) if f"{m}_diff_mean" in summary]


def key_text(value: object) -> str:
    """A group key as text: missing values (e.g. epsilon of `none`) as a dash, 2.0 as 2."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mean_std_text(mean: float, std: float, digits: int, round_up: bool = False) -> str:
    """`mean ± std` with `digits` decimals (the mean rounded up if asked); no std when undefined (one run)."""
    if pd.isna(mean):
        return MISSING
    if round_up:
        mean = math.ceil(mean * 10**digits) / 10**digits
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def interval_text(lo: float, hi: float, spec: str) -> str:
    """` [lo, hi]` in the number format `spec`; empty when the interval is undefined (n < 2)."""
    return "" if pd.isna(lo) or pd.isna(hi) else f" [{lo:{spec}}, {hi:{spec}}]"


def estimate_text(mean: float, std: float, lo: float, hi: float, digits: int, clipped: bool = False) -> str:
    """`mean ± std [lo, hi]`: the group mean, its unbiased std over seeds and the t-interval of the mean
    (`CLIP_MARK` after it when the interval was clipped to the metric's range)."""
    if pd.isna(mean):
        return MISSING
    return mean_std_text(mean, std, digits) + interval_text(lo, hi, f".{digits}f") + (CLIP_MARK if clipped else "")


def budget_text(mean: float, std: float, digits: int) -> str:
    """A spent budget: the mean rounded up, `± std` only when the runs spent different amounts.

    Budgets below 0.1 (a delta) keep two significant digits, rounded up: 2.1e-05, never 0.000.
    """
    if not pd.isna(mean) and 0 < mean < 0.1:
        scale = 10 ** (math.floor(math.log10(mean)) - 1)
        return f"{math.ceil(mean / scale - 1e-9) * scale:.1e}"
    return mean_std_text(mean, std if std > 0 else float("nan"), digits, round_up=True)


def difference_text(mean: float, lo: float, hi: float, digits: int) -> str:
    """`Δ [lo, hi]` signed, with `*` when the interval excludes 0; a dash without pairs."""
    if pd.isna(mean):
        return MISSING
    excludes_zero = lo > 0 or hi < 0  # False for NaN bounds (one pair: no interval)
    return f"{mean:+.{digits}f}" + interval_text(lo, hi, f"+.{digits}f") + ("*" if excludes_zero else "")


def display_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The summary as text cells: keys, n, and one `mean ± std [lo, hi]` column per metric (budgets: mean).

    Intervals are clipped to the metric's range (`gnnrisk.report.ranges`) and then marked with `CLIP_MARK`;
    the sentence that explains the mark is in the table's `attrs["footnotes"]` (to_markdown writes it under
    the table, to_latex into the caption)."""
    out = pd.DataFrame({k: summary[k].map(key_text) for k in key_columns(summary)}, index=summary.index)
    out["n"] = summary[N_RUNS].astype(int).astype(str)
    any_clipped = False
    for m in summary_metrics(summary):
        mean, std = summary[f"{m}_mean"], summary[f"{m}_std"]
        if m in ROUND_UP:
            out[m] = [budget_text(a, b, digits) for a, b in zip(mean, std)]
            continue
        lo, hi, low_cut, high_cut = clip_interval(m, summary[f"{m}_ci_lo"], summary[f"{m}_ci_hi"])
        clipped = low_cut | high_cut
        any_clipped = any_clipped or bool((clipped & mean.notna().to_numpy()).any())
        out[m] = [estimate_text(a, b, c, d, digits, cut) for a, b, c, d, cut in zip(mean, std, lo, hi, clipped)]
    out.attrs[FOOTNOTES] = [CLIPPED_NOTE] if any_clipped else []
    return out


def footnotes(table: pd.DataFrame) -> list[str]:
    """The sentences that explain a text table's marks (empty when it has none)."""
    return list(table.attrs.get(FOOTNOTES, []))


def private_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of private groups (all rows when the mechanism does not vary)."""
    name = label(PRIVACY_NAME)
    return summary[summary[name] != NONPRIVATE] if name in summary else summary


def paired_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame | None:
    """Private groups as text cells: keys, n = pairs, `Δ <m>` = `Δ [lo, hi]` per metric; None when nothing pairs."""
    names = paired_metrics(summary)
    if not names:
        return None
    rows = private_rows(summary)
    out = pd.DataFrame({k: rows[k].map(key_text) for k in key_columns(summary)}, index=rows.index)
    out["n"] = rows[[f"{m}_diff_n" for m in names]].max(axis=1).fillna(0).astype(int).astype(str)
    for m in names:
        cols = [rows[f"{m}_diff_{s}"] for s in ("mean", "ci_lo", "ci_hi")]
        out[f"Δ {m}"] = [difference_text(a, lo, hi, digits) for a, lo, hi in zip(*cols)]
    first = names[0]
    if f"{first}_rise_mean" in rows and rows[f"{first}_rise_mean"].notna().any():
        cols = [rows[f"{first}_rise_{s}"] for s in ("mean", "ci_lo", "ci_hi")]
        out[f"{first} rise vs next lower ε"] = [difference_text(a, lo, hi, digits) for a, lo, hi in zip(*cols)]
    return out


def paired_csv(summary: pd.DataFrame) -> pd.DataFrame:
    """The private groups' keys and the numbers of their paired differences."""
    diffs = [f"{m}_{kind}_{s}" for m in paired_metrics(summary) for kind in ("diff", "rise")
             for s in ("mean", "std", "n", "ci_lo", "ci_hi") if f"{m}_{kind}_{s}" in summary]
    return private_rows(summary)[key_columns(summary) + diffs]


def to_markdown(table: pd.DataFrame, notes: bool = True) -> str:
    """A GitHub Markdown table of text cells (pipes in cells escaped), its footnotes under it after a blank line
    (`notes=False`: the table alone)."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |"
    lines = [row(list(table.columns)), "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += [row(list(r)) for r in table.itertuples(index=False)]
    below = footnotes(table) if notes else []
    return "\n".join(lines + ([""] + below if below else [])) + "\n"


def to_latex(table: pd.DataFrame, caption: str, tex_label: str = "tab:gnnrisk-summary") -> str:
    """A LaTeX booktabs table (\\toprule, \\midrule, \\bottomrule) of text cells, special characters escaped."""
    n_keys = list(table.columns).index("n")
    fmt = "l" * n_keys + "r" * (table.shape[1] - n_keys)
    caption = " ".join([caption, *footnotes(table)])
    text = table.to_latex(index=False, escape=True, column_format=fmt, caption=caption.translate(LATEX_CAPTION),
                          label=tex_label)
    for char, latex in LATEX_TEXT.items():
        text = text.replace(char, latex)
    return text


def as_caption(title: str) -> str:
    """A table title as a caption sentence."""
    return title[0].upper() + title[1:] + "."


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that failed (with their error), never finished (killed or still running) or left a broken metrics.json."""
    bad = runs[runs["status"].isin([FAILED, INCOMPLETE, BROKEN])]
    return bad[["run", "status", "error_type", "error"]].reset_index(drop=True)


def markdown_tables(summary: pd.DataFrame | None, digits: int = 3) -> dict[str, str]:
    """The text of summary.md and paired.md by region name (`summary`, `paired`), those the summary gives."""
    if summary is None or summary.empty:
        return {}
    tables = {"summary": to_markdown(display_table(summary, digits))}
    paired = paired_table(summary, digits)
    if paired is not None:
        tables["paired"] = to_markdown(paired)
    return tables


def _write_or_remove(path: Path, text: str | None) -> list[Path]:
    """Write `text` to `path`, or remove a stale `path` when there is nothing to write; the paths written."""
    if text is None:
        path.unlink(missing_ok=True)
        return []
    return [write_text_atomic(path, text)]


def write_tables(runs: pd.DataFrame, summary: pd.DataFrame | None, out_dir: Path,
                 digits: int = 3) -> list[Path]:
    """Write runs.csv, failed.csv (if any), summary.csv/.md/.tex (if any group), paired.csv/.md/.tex (if any
    private group has a non-private reference); return the paths."""
    written = [write_text_atomic(out_dir / "runs.csv", runs.to_csv(index=False))]
    bad = failed_runs(runs)
    written += _write_or_remove(out_dir / "failed.csv", bad.to_csv(index=False) if len(bad) else None)
    has_summary = summary is not None and not summary.empty
    paired = paired_table(summary, digits) if has_summary else None
    if has_summary:
        table = display_table(summary, digits)
        for name, text in (("summary.csv", summary.to_csv(index=False)), ("summary.md", to_markdown(table)),
                           ("summary.tex", to_latex(table, as_caption(SUMMARY_TITLE)))):
            written.append(write_text_atomic(out_dir / name, text))
    texts: dict[str, str | None] = dict.fromkeys(PAIRED_FILES)
    if paired is not None:
        texts = {"paired.csv": paired_csv(summary).to_csv(index=False), "paired.md": to_markdown(paired),
                 "paired.tex": to_latex(paired, as_caption(PAIRED_TITLE), "tab:gnnrisk-paired")}
    for name, text in texts.items():
        written += _write_or_remove(out_dir / name, text)
    return written
