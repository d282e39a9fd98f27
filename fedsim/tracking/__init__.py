"""Experiment trackers (``output.trackers: [tensorboard, mlflow]``): every round's metrics, the config, the files.

Each tracker is an optional extra (``pip install -e ".[tracking]"``); naming one that is not
installed is a one-line :class:`~fedsim.errors.FedsimError`, raised before any run folder exists.
Trackers are fed through :meth:`fedsim.experiment.Experiment.run`'s ``trackers`` list.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedsim.config.schema import ExperimentConfig
from fedsim.errors import FedsimError
from fedsim.experiment import RunResult, RunTracker, resolve_config

__all__ = ["TRACKERS", "check_trackers", "flatten", "open_trackers", "run"]

# tracker -> the package it needs (all in the ``tracking`` extra)
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def check_trackers(names: Iterable[str]) -> None:
    """Raise a one-line error if a named tracker's package is missing."""
    for name in names:
        if name not in TRACKERS:
            raise FedsimError(f"output.trackers: unknown tracker {name!r} (allowed: {', '.join(TRACKERS)})")
        try:
            importlib.import_module(TRACKERS[name])
        except ImportError:
            raise FedsimError(f"output.trackers: {name} needs the {TRACKERS[name]} package, which is not installed: "
                              "pip install -e '.[tracking]'") from None


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"algorithm": {"lr": 0.1}}`` -> ``{"algorithm.lr": 0.1}`` (lists stay values)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, sub in node.items():
            out.update(flatten(sub, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics row (booleans and None left out)."""
    return {k: float(v) for k, v in flatten(row).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "round" and v == v}


def open_trackers(cfg: ExperimentConfig, run_dir: str | Path, *, experiment: str | None = None,
                  tags: Mapping[str, str] | None = None) -> list[RunTracker]:
    """The trackers ``cfg.output.trackers`` names, started for the run in ``run_dir``.

    ``experiment`` names the MLflow experiment (default ``$MLFLOW_EXPERIMENT_NAME`` or ``fedsim``;
    a sweep passes its folder's name); ``tags`` are added to the MLflow run.
    """
    check_trackers(cfg.output.trackers)
    trackers: list[RunTracker] = []
    for name in cfg.output.trackers:
        if name == "tensorboard":
            from fedsim.tracking.tensorboard import TensorBoardTracker

            trackers.append(TensorBoardTracker(cfg, Path(run_dir)))
        else:
            from fedsim.tracking.mlflow import MlflowTracker

            trackers.append(MlflowTracker(cfg, Path(run_dir), experiment=experiment, tags=tags))
    return trackers


def run(
    config: ExperimentConfig | dict[str, Any] | str | Path,
    overrides: Iterable[str] = (),
    *,
    model: Any = None,
    partition: Sequence[Sequence[int]] | Callable[..., Any] | None = None,
    dataset: Any = None,
    out: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """:func:`fedsim.experiment.run` with the config's ``output.trackers`` attached (this is ``fedsim.run``)."""
    from fedsim.experiment import Experiment
    from fedsim.output import RunFolder

    cfg = resolve_config(config, overrides)
    check_trackers(cfg.output.trackers)
    experiment = Experiment(cfg, model=model, partition=partition, dataset=dataset)
    folder = RunFolder.create(out if out is not None else cfg.output.dir)
    try:
        return experiment.run(folder, progress, trackers=open_trackers(cfg, folder.path))
    finally:
        experiment.runtime.close()
