"""The ServerApp and ClientApp that ``fedsim flower export`` writes, as factories.

The exported modules are three lines each: they call these factories with the path of the
``experiment.yaml`` shipped beside them, so all behaviour lives here, in fedsim, and both
sides build the federation with :class:`fedsim.experiment.Experiment`, exactly as
``fedsim run`` does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from fedsim._version import __version__
from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.config.schema import ExperimentConfig
from fedsim.data.federated import FederatedData
from fedsim.deploy.client import node_partition, train_hosted_clients
from fedsim.deploy.server import FlowerRuntime
from fedsim.experiment import Experiment, resolve_config
from fedsim.models.functional import FunctionalModel
from fedsim.output import RunFolder
from fedsim.runtimes.base import Runtime

if TYPE_CHECKING:
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp

__all__ = ["NODE_CACHE", "ROUND_LINE", "make_client_app", "make_server_app", "node_data", "run_server"]

ROUND_LINE = "fedsim-round"
NODE_CACHE = "fedsim-cache"  # under FLWR_HOME: each SuperNode's hosted split


class _WithParticipation:
    """The configured algorithm, each round's metrics extended with who answered under Flower.

    Everything but ``round`` and ``summary`` is the algorithm's own (delegated by attribute).
    """

    def __init__(self, inner: Algorithm, runtime: FlowerRuntime) -> None:
        self.inner = inner
        self.runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        metrics = self.inner.round(state, rnd, runtime)
        metrics.extra.update(self.runtime.round_report)
        return metrics

    def summary(self) -> dict[str, object]:
        return {**self.inner.summary(), "runtime": "flower", **self.runtime.summary()}


def _run_folder(path: Path) -> RunFolder:
    """``path`` itself (``fedsim flower deploy`` made it), or a fresh sibling if it already holds a run."""
    if (path / "metrics.jsonl").exists():
        return RunFolder.create(path)
    path.mkdir(parents=True, exist_ok=True)
    return RunFolder(path)


def run_server(grid: Grid, context: Context, config_path: Path) -> None:
    """The ServerApp: fedsim's experiment loop with :class:`FlowerRuntime` as its runtime."""
    cfg = resolve_config(config_path)
    experiment = Experiment(cfg)
    experiment.runtime.close()
    runtime = FlowerRuntime(grid, experiment.model, experiment.data, seed=cfg.seed, settings=cfg.flower)
    experiment.runtime = runtime
    expected = int(context.run_config.get("expected-nodes", cfg.flower.min_nodes))
    runtime.wait_for_nodes(expected, "the start of the run (--supernodes)")
    # _WithParticipation is the algorithm by delegation (__getattr__), not by inheritance
    experiment.algorithm = cast(Algorithm, _WithParticipation(experiment.algorithm, runtime))
    folder = _run_folder(Path(str(context.run_config["run-dir"])))
    print(f"{ROUND_LINE} run folder {folder.path}", flush=True)

    def report(row: dict[str, Any]) -> None:
        acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        eps = f" epsilon {row['epsilon']:.6g}" if row.get("epsilon") is not None else ""
        print(f"{ROUND_LINE} {row['round']}/{cfg.algorithm.rounds} accuracy {acc} clients {row['clients']}{eps}", flush=True)

    experiment.run(folder, report)


@lru_cache(maxsize=1)
def _client_config(config_path: Path) -> ExperimentConfig:
    return resolve_config(config_path)


def _flwr_home() -> Path:
    return Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr")


def node_data(cfg: ExperimentConfig, partition_id: int, num_partitions: int, cache: Path) -> FederatedData:
    """The federation as one SuperNode sees it: its hosted clients' samples, nobody else's.

    Flower starts a fresh ClientApp process for every message, so the node's split is saved
    under ``cache`` the first time (built by fedsim's seeded partitioner, as in simulation)
    and loaded from there afterwards. Clients the node does not host get no samples; the test
    set stays with the server.
    """
    key = hashlib.sha256(
        json.dumps([__version__, "with-meta", cfg.seed, cfg.data.model_dump(mode="json"), partition_id, num_partitions]).encode()
    ).hexdigest()[:16]
    folder = cache / f"{key}-p{partition_id}of{num_partitions}"
    if not (folder / "offsets.npy").exists():
        full = cfg.data.build(cfg.seed)
        mine = [full.client_indices[c] if c % num_partitions == partition_id else full.client_indices[c][:0] for c in range(full.num_clients)]
        index = torch.cat(mine)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".partial-"))
        np.save(tmp / "x.npy", full.x_train[index].numpy())
        np.save(tmp / "y.npy", full.y_train[index].numpy())
        np.save(tmp / "offsets.npy", np.cumsum([0, *(len(i) for i in mine)]))
        # what sizes the model (ModelConfig.build reads it from the data)
        (tmp / "meta.json").write_text(json.dumps({"input_shape": list(full.input_shape), "num_classes": full.num_classes,
                                                   "kind": full.kind, "vocab_size": full.vocab_size, "name": full.name}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another ClientApp of this node got there first
            shutil.rmtree(tmp, ignore_errors=True)
    offsets = np.load(folder / "offsets.npy")
    x = torch.from_numpy(np.load(folder / "x.npy"))
    y = torch.from_numpy(np.load(folder / "y.npy"))
    meta = json.loads((folder / "meta.json").read_text())
    meta["input_shape"] = tuple(meta["input_shape"])
    return FederatedData(x, y, [torch.arange(offsets[c], offsets[c + 1]) for c in range(len(offsets) - 1)], x[:0], y[:0], **meta)


def make_server_app(config_path: Path) -> ServerApp:
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_server(grid, context, config_path)

    return app


def make_client_app(config_path: Path) -> ClientApp:
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        cfg = _client_config(config_path)
        data = node_data(cfg, *node_partition(context), _flwr_home() / NODE_CACHE)
        return train_hosted_clients(msg, context, FunctionalModel(cfg.model.build(cfg.seed, data)), data, cfg.seed)

    return app
