"""``fedsim flower deploy``: run an experiment on a real SuperLink and SuperNodes, write its run folder.

The run folder is the one ``fedsim run`` writes (``config.yaml``, ``metrics.jsonl``,
``summary.json``, ``curves.png``), written by the ServerApp; it also holds ``flower/``: the
exported app, ``FLWR_HOME`` (connection config, installed apps, process logs, certificates).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.config.schema import ExperimentConfig
from fedsim.deploy.apps import NODE_CACHE
from fedsim.deploy.cluster import FlowerCluster
from fedsim.deploy.export import export_app
from fedsim.errors import FedsimError
from fedsim.experiment import resolve_config
from fedsim.output import RunFolder, read_metrics, write_json_atomic

__all__ = ["DeployResult", "deploy", "run_timeout"]

_STARTUP_SLACK_S = 120.0


@dataclass
class DeployResult:
    """The run folder, per-round metrics and summary of a deployed run."""

    run_dir: Path
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    run_id: int
    wall_s: float

    @property
    def final_accuracy(self) -> float:
        return self.summary["final_accuracy"]


def run_timeout(cfg: ExperimentConfig) -> float:
    """Watchdog for a whole run: every round may wait for nodes and then time out once."""
    per_round = cfg.flower.node_wait_s + cfg.flower.round_timeout_s
    return _STARTUP_SLACK_S + cfg.flower.node_wait_s + cfg.algorithm.rounds * per_round


class _MetricsTail:
    """Hands each new complete line of ``metrics.jsonl`` to ``callback`` as the ServerApp appends it."""

    def __init__(self, path: Path, callback: Callable[[dict[str, Any]], None] | None) -> None:
        self.path = path
        self.callback = callback
        self.offset = 0

    def poll(self) -> None:
        if self.callback is None or not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            if line.strip():
                self.callback(json.loads(line))


def _finish_summary(run_dir: Path, updates: dict[str, Any]) -> dict[str, Any]:
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {"rounds": 0, "final_accuracy": None}
    summary.update(updates)
    write_json_atomic(path, summary)
    return summary


def deploy(
    config: ExperimentConfig | dict[str, Any] | str | Path,
    overrides: Iterable[str] = (),
    *,
    supernodes: int = 2,
    out: str | Path | None = None,
    tls: bool = False,
    superlink: str | None = None,
    port: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[FlowerCluster], None] | None = None,
) -> DeployResult:
    """Run an experiment on one SuperLink and ``supernodes`` SuperNodes on 127.0.0.1.

    Parameters
    ----------
    config, overrides
        As for :func:`fedsim.experiment.run`.
    supernodes : int (default: 2)
        SuperNodes to start; node ``p`` hosts the clients ``c`` with ``c % supernodes == p``.
    out : path, optional
        Run folder instead of ``config.output.dir``.
    tls : bool (default: False)
        Run every connection over TLS with a throwaway CA.
    superlink : str, optional
        ``host:port`` of a SuperLink started elsewhere (docker compose); nothing is started.
    port : int, optional
        The SuperLink's port on 127.0.0.1 (default: a free one); taken is a one-line error.
    progress : callable, optional
        Called with each round's metrics row as the ServerApp writes it.
    on_start : callable, optional
        Called with the started cluster before the run is submitted (fault injection in tests).
    """
    cfg = resolve_config(config, overrides)
    if cfg.flower.min_nodes > supernodes:
        raise FedsimError(f"flower.min_nodes={cfg.flower.min_nodes} exceeds --supernodes={supernodes}")
    if supernodes > cfg.data.num_clients:
        raise FedsimError(f"--supernodes={supernodes} exceeds data.num_clients={cfg.data.num_clients}: some SuperNodes would host no client")
    run_dir = RunFolder.create(out if out is not None else cfg.output.dir).path.resolve()
    flower_dir = run_dir / "flower"
    app_dir = export_app(cfg, flower_dir / "app", run_dir=run_dir, expected_nodes=supernodes)
    cluster = FlowerCluster(flower_dir / "home", supernodes, tls=tls, superlink_port=port, external_superlink=superlink)
    tail = _MetricsTail(run_dir / "metrics.jsonl", progress)
    start = time.perf_counter()
    run_id = 0
    try:
        with cluster:
            if on_start is not None:
                on_start(cluster)
            run_id = cluster.submit(app_dir)
            cluster.wait(
                run_id,
                timeout=run_timeout(cfg),
                ready=(run_dir / "summary.json").exists,
                on_tick=tail.poll,
            )
            tail.poll()
    except FedsimError as exc:
        _finish_summary(run_dir, {"status": "failed", "error": str(exc), "runtime": "flower"})
        raise
    except KeyboardInterrupt:
        _finish_summary(run_dir, {"status": "interrupted", "runtime": "flower"})
        raise
    finally:
        # The SuperNodes' copies of their clients' data (hundreds of MB) are no result.
        shutil.rmtree(cluster.home / NODE_CACHE, ignore_errors=True)
    wall_s = time.perf_counter() - start
    summary = _finish_summary(
        run_dir,
        {"supernodes": supernodes, "tls": tls, "flower_run_id": str(run_id), "deploy_wall_s": wall_s},
    )
    return DeployResult(run_dir, read_metrics(run_dir), summary, run_id, wall_s)
