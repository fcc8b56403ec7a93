"""`logger=csv`: each tracked run as a folder of plain CSV files, STORE/csv/<experiment>/<run name>/.

params.csv and tags.csv (key,value), metrics.csv (the final metrics: key,value), history.csv (the curve
in long form: step,key,value with step = epoch) and artifacts/ (copies of the run's plots).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Iterable

from gnnrisk.logger.base import Logger, TrackingTarget, fresh_dir, safe_folder_name
from gnnrisk.logger.record import RunRecord
from gnnrisk.utils.files import write_text_atomic

FOLDER = "csv"


def csv_text(header: tuple[str, ...], rows: Iterable[tuple]) -> str:
    """Rows as CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def run_folder(target: TrackingTarget) -> Path:
    """Where `target`'s CSV files go."""
    return target.store / FOLDER / safe_folder_name(target.experiment) / safe_folder_name(target.run_name)


class CsvLogger(Logger):
    """Plain CSV files, readable without any tracking package (pandas.read_csv, a spreadsheet)."""

    name = "csv"

    def log(self, record: RunRecord, target: TrackingTarget) -> None:
        """Write the run's folder next to the others, then move it into place (a reader sees all or none)."""
        final = run_folder(target)
        staging = fresh_dir(final.parent / f".{final.name}.incomplete")
        tags = {"run_name": target.run_name, "experiment": target.experiment, **record.tags}
        write_text_atomic(staging / "params.csv", csv_text(("key", "value"), sorted(record.params.items())))
        write_text_atomic(staging / "tags.csv", csv_text(("key", "value"), tags.items()))
        write_text_atomic(staging / "metrics.csv", csv_text(("key", "value"), record.metrics.items()))
        write_text_atomic(staging / "history.csv", csv_text(("step", "key", "value"),
                                                            ((step, key, value) for key, step, value in record.curve)))
        if record.artifacts:
            (staging / "artifacts").mkdir()
            for path in record.artifacts:
                shutil.copy2(path, staging / "artifacts" / path.name)
        shutil.rmtree(final, ignore_errors=True)  # tracked again: the new record replaces the old one
        os.replace(staging, final)
