"""The ServerApp and ClientApp that ``fedsim flower export`` writes, as factories.

The exported modules are three lines each: they call these factories with the path of the
``experiment.yaml`` shipped beside them, so all behaviour lives here, in fedsim, and both
sides build the federation with :class:`fedsim.experiment.Experiment`, exactly as
``fedsim run`` does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.deploy.runtime import FlowerRuntime, train_hosted_clients
from fedsim.experiment import Experiment, resolve_config
from fedsim.output import RunFolder
from fedsim.runtimes.base import Runtime

if TYPE_CHECKING:
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp

__all__ = ["ROUND_LINE", "make_client_app", "make_server_app", "run_server"]

ROUND_LINE = "fedsim-round"


class _WithParticipation(Algorithm):
    """The configured algorithm, each round's metrics extended with who answered under Flower."""

    def __init__(self, inner: Algorithm, runtime: FlowerRuntime) -> None:
        self.inner = inner
        self.runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def init(self, params: torch.Tensor) -> ServerState:
        return self.inner.init(params)

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        metrics = self.inner.round(state, rnd, runtime)
        metrics.extra.update(self.runtime.round_report)
        return metrics

    def eval_params(self, state: ServerState) -> torch.Tensor:
        return self.inner.eval_params(state)

    def summary(self) -> dict[str, object]:
        return {**self.inner.summary(), "runtime": "flower", **self.runtime.summary()}

    def state_dict(self) -> dict[str, object]:
        return self.inner.state_dict()

    def load_state_dict(self, sd: dict[str, object]) -> None:
        self.inner.load_state_dict(sd)


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
    experiment.algorithm = _WithParticipation(experiment.algorithm, runtime)
    folder = _run_folder(Path(str(context.run_config["run-dir"])))
    print(f"{ROUND_LINE} run folder {folder.path}", flush=True)

    def report(row: dict[str, Any]) -> None:
        acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        print(f"{ROUND_LINE} {row['round']}/{cfg.algorithm.rounds} accuracy {acc} clients {row['clients']}", flush=True)

    experiment.run(folder, report)


@lru_cache(maxsize=1)
def _client_experiment(config_path: Path) -> Experiment:
    return Experiment(resolve_config(config_path))


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
        experiment = _client_experiment(config_path)
        return train_hosted_clients(msg, context, experiment.model, experiment.data, experiment.cfg.seed)

    return app
