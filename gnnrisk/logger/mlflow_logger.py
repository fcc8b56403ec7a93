"""`logger=mlflow`: each tracked run as an MLflow run in a SQLite store, STORE/mlflow.db, plots in STORE/mlartifacts/.

SQLite is MLflow 3's store without a server (its `file:` store is refused unless MLFLOW_ALLOW_FILE_STORE
is set, and in maintenance mode); read it back with `MlflowClient(tracking_uri="sqlite:///STORE/mlflow.db")`
or `mlflow ui --backend-store-uri sqlite:///STORE/mlflow.db`. A run's params are the flattened config, its
metrics the final metrics (step 0) and the curve as `epoch/<metric>` (step = epoch), its tags the
guarantee (`guarantee.epsilon`, ...), its artifacts the plots. The sweep's jobs write in turn (the store's
lock), so the parallel launchers share one store.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from gnnrisk.logger.base import Logger, TrackingTarget, safe_folder_name, safe_key
from gnnrisk.logger.record import RunRecord

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
CURVE_PREFIX = "epoch/"
RUN_DIR_TAG = "gnnrisk.run_dir"
MAX_PARAM_CHARS = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_KEY_CHARS = 250     # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
BATCH = 100             # params (and tags) per log_batch call (MLflow's limit)
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration")


def tracking_uri(store: Path) -> str:
    """The SQLite URI of the store's database (an absolute path: four slashes)."""
    return f"sqlite:///{(store / DB_FILE).absolute().as_posix()}"


@contextmanager
def quiet_migrations() -> Iterator[None]:
    """Hide the INFO lines MLflow and Alembic print while creating a new database."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def client_for(store: Path) -> Any:
    """An MlflowClient on the store (telemetry off unless the user set it: the store is local by intent)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    with quiet_migrations():
        client = MlflowClient(tracking_uri=tracking_uri(store))
        client.search_experiments(max_results=1)  # creates the tables of a new store now, quietly
    return client


def experiment_id(client: Any, name: str, store: Path) -> str:
    """The id of experiment `name`, created with its artifacts under the store if new."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (store / ARTIFACTS_DIR / safe_folder_name(name)).absolute().as_uri()
    return client.create_experiment(name, artifact_location=location)


def param_value(text: str) -> str:
    """A param value within MLflow's length limit (a long list is cut, marked so)."""
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 14] + " ...(truncated)"


class MlflowLogger(Logger):
    """MLflow tracking into a local SQLite store."""

    name = "mlflow"

    def log(self, record: RunRecord, target: TrackingTarget) -> None:
        """One MLflow run for the run folder; an earlier tracked run of the same folder is deleted first."""
        from mlflow.entities import Metric, Param

        client = client_for(target.store)
        exp = experiment_id(client, target.experiment, target.store)
        run_dir = str(target.run_dir)
        for old in client.search_runs([exp], filter_string=f"tags.`{RUN_DIR_TAG}` = '{_quoted(run_dir)}'"):
            client.delete_run(old.info.run_id)
        tags = {**record.tags, RUN_DIR_TAG: run_dir, "mlflow.source.name": "gnnrisk"}
        run = client.create_run(exp, start_time=int(record.started * 1000), run_name=target.run_name,
                                tags={safe_key(k)[:MAX_KEY_CHARS]: v for k, v in tags.items()})
        run_id = run.info.run_id
        try:
            params = [Param(safe_key(k)[:MAX_KEY_CHARS], param_value(v)) for k, v in record.params.items()]
            for i in range(0, len(params), BATCH):
                client.log_batch(run_id, params=params[i:i + BATCH])
            now = int(time.time() * 1000)
            metrics = [Metric(safe_key(k)[:MAX_KEY_CHARS], v, now, 0) for k, v in record.metrics.items()]
            metrics += [Metric(safe_key(CURVE_PREFIX + k)[:MAX_KEY_CHARS], v, now, step)
                        for k, step, v in record.curve]
            for i in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[i:i + 1000])
            for path in record.artifacts:
                client.log_artifact(run_id, str(path))
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED", end_time=int(record.ended * 1000))


def _quoted(text: str) -> str:
    """`text` inside a single-quoted MLflow filter string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
