"""MLflow tracker: the flattened config as params, per-round metrics, the run folder as artifacts.

Uses ``MlflowClient`` (no fluent API: its active run is process-global state that trials sharing a
process would share). The store is ``$MLFLOW_TRACKING_URI`` or a local file store ``./mlruns``
(browse with ``mlflow ui --backend-store-uri ./mlruns``). MLflow 3 keeps the file store in
maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, which is set for that default store only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping

from fedsim.config.schema import ExperimentConfig

__all__ = ["MlflowTracker", "tracking_uri"]

PARAM_LIMIT = 6000  # MLflow's longest param value


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the file store ``./mlruns`` (as an absolute ``file:`` URI)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return Path("mlruns").resolve().as_uri()


class MlflowTracker:
    """One MLflow run per fedsim run, in experiment ``experiment`` (created if missing)."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, *, experiment: str | None = None,
                 tags: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from fedsim.tracking import flatten

        self.run_dir = run_dir
        self.client = MlflowClient(tracking_uri=tracking_uri())
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "fedsim"
        self.experiment_id = self._experiment(name)
        run = self.client.create_run(self.experiment_id, run_name=run_dir.name,
                                     tags={"fedsim.run_dir": str(run_dir.resolve()), **(tags or {})})
        self.run_id = run.info.run_id
        params = [Param(k, str(v)[:PARAM_LIMIT]) for k, v in flatten(cfg.model_dump(mode="json")).items()]
        for i in range(0, len(params), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:  # noqa: BLE001 - another trial created it in between
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def log_round(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        from fedsim.tracking import scalars

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, int(row["round"])) for k, v in scalars(row).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, summary: dict[str, Any]) -> None:
        self.client.log_artifacts(self.run_id, str(self.run_dir))
        status = {"completed": "FINISHED", "stopped": "FINISHED", "interrupted": "KILLED", "diverged": "FAILED"}.get(summary.get("status", ""), "FAILED")
        self.client.set_terminated(self.run_id, status)
