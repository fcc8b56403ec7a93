"""The short console summary printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HEADLINE = ("test_acc", "test_auroc", "test_auroc_true", "val_acc", "delta_sp", "delta_eo",
            "delta_eo_true", "epsilon", "delta", "explain_auroc", "explain_precision_at_k", "attack_lsa_gain",
            "attack_mia_auroc", "attack_linkteller_auroc", "attack_explain_sim_auroc", "eps_lower",
            "train_seconds")
# The one line a sweep prints per finished run (the progress line follows it).
SWEEP_LINE = ("test_auroc", "test_auroc_true", "epsilon", "eps_lower")


def _fmt(value: Any) -> str:
    """Numbers to 4 significant digits, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_summary(metrics: dict[str, Any], run_dir: Path, one_line: bool = False) -> None:
    """Print the headline metrics of a run and where its files are (`one_line` in sweeps)."""
    if one_line:
        shown = " ".join(f"{k}={_fmt(metrics[k])}" for k in SWEEP_LINE if k in metrics)
        print(f"finished {run_dir.name}: {shown}", flush=True)
        return
    title = (f"{metrics.get('dataset')} / {metrics.get('model')} / privacy={metrics.get('mechanism')}"
             f" / seed={metrics.get('seed')}")
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in HEADLINE:
        if key in metrics:
            table.add_row(key, _fmt(metrics[key]))
    console = Console(width=100)
    console.print(table)
    console.print(f"results: {run_dir}")
