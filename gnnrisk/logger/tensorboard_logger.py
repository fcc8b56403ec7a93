"""`logger=tensorboard`: each tracked run as event files in STORE/tensorboard/<experiment>/<run name>/.

Scalars `epoch/<metric>` (the curve, step = epoch) and `final/<metric>` (the final metrics, step 0); the
params and the guarantee as hparams (the HParams tab) and as text (`params`, `guarantee`); the PNG plots
as images `plots/<name>`, and every plot (PNG and PDF) copied into the run's artifacts/ folder, since
TensorBoard keeps no files. Written with `torch.utils.tensorboard.SummaryWriter`; `tensorboard --logdir
STORE/tensorboard` shows them, `EventAccumulator` reads them back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gnnrisk.logger.base import Logger, TrackingTarget, fresh_dir, safe_folder_name, safe_key
from gnnrisk.logger.record import RunRecord

FOLDER = "tensorboard"
CURVE_PREFIX = "epoch/"
FINAL_PREFIX = "final/"


def run_folder(target: TrackingTarget) -> Path:
    """Where `target`'s event files go."""
    return target.store / FOLDER / safe_folder_name(target.experiment) / safe_folder_name(target.run_name)


def markdown_table(values: dict[str, str]) -> str:
    """A key/value table for TensorBoard's text tab."""
    rows = "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in values.items())
    return "| key | value |\n|---|---|\n" + rows


class TensorboardLogger(Logger):
    """TensorBoard event files, one folder per tracked run."""

    name = "tensorboard"

    def log(self, record: RunRecord, target: TrackingTarget) -> None:
        """Write the run's events into a staging folder, then move it into place (replacing an earlier one)."""
        import matplotlib.image
        from torch.utils.tensorboard import SummaryWriter

        final = run_folder(target)
        staging = fresh_dir(final.parent / f".{final.name}.incomplete")
        writer = SummaryWriter(log_dir=str(staging))
        try:
            for key, step, value in record.curve:
                writer.add_scalar(safe_key(CURVE_PREFIX + key), value, step, walltime=record.ended)
            writer.add_text("params", markdown_table(record.params), 0)
            writer.add_text("guarantee", markdown_table(record.tags), 0)
            for path in record.artifacts:
                if path.suffix.lower() == ".png":
                    image = matplotlib.image.imread(path)
                    writer.add_image(f"plots/{path.stem}", image, 0, dataformats="HWC" if image.ndim == 3 else "HW")
            # run_name=".": the hparams and final/* scalars go into this run's own folder, not a timestamped one
            writer.add_hparams({**record.params, **record.tags},
                               {safe_key(FINAL_PREFIX + k): v for k, v in record.metrics.items()}, run_name=".")
        finally:
            writer.close()
        if record.artifacts:
            (staging / "artifacts").mkdir()
            for path in record.artifacts:
                shutil.copy2(path, staging / "artifacts" / path.name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
