"""Run an experiment: config -> data -> model -> runtime -> algorithm -> rounds -> run folder.

This is the only place that wires the layers together; the CLI and the Python API both call
:func:`run`. Everything that can fail on user input (config, data files) is checked before the
run folder is created.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from fedsim._version import __version__
from fedsim.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fedsim.config.loading import apply_overrides, config_sha256, dump_config, read_yaml, validate_config
from fedsim.config.base import BuildContext
from fedsim.config.robustness import RobustEvaluationConfig
from fedsim.config.robustness import attach as attach_robustness
from fedsim.config.schema import ExperimentConfig
from fedsim.errors import FedsimError, raise_terminated
from fedsim.data.datasets import Dataset
from fedsim.data.federated import FederatedData
from fedsim.evaluation import client_accuracies, fairness_metrics, split_client_holdout
from fedsim.models.functional import FunctionalModel, evaluate
from fedsim.output import FILE_MODE, RunFolder
from fedsim.robustness.evaluation import robust_report
from fedsim.seeding import derive_seed, torch_generator

__all__ = ["RunResult", "RunTracker", "Experiment", "resolve_config", "resume", "run"]



class RunTracker(Protocol):
    """Something fed every round (an experiment tracker: :mod:`fedsim.tracking` builds them from ``output.trackers``)."""

    def log_round(self, row: dict[str, Any]) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    """What :func:`run` returns: the run folder, per-round history, summary and final parameters."""

    run_dir: Path
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    params: torch.Tensor

    @property
    def final_accuracy(self) -> float:
        return self.summary["final_accuracy"]


def resolve_config(config: ExperimentConfig | dict[str, Any] | str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """A validated config from a path, a raw mapping or a config object, with ``section.key=value`` overrides."""
    overrides = list(overrides)
    if isinstance(config, ExperimentConfig):
        if not overrides:
            return config
        config, source = config.model_dump(mode="json"), "config"
    elif isinstance(config, (str, Path)):
        source = str(config)
        config = read_yaml(config)
    else:
        source = "config"
    return validate_config(apply_overrides(dict(config), overrides), source)


class Experiment:
    """A configured federation, ready to run: data, model, runtime and algorithm built, nothing written.

    ``model`` (an ``nn.Module``) and ``partition`` (index lists, or a function
    ``f(labels, num_clients, rng) -> index lists``) replace the configured ones; ``dataset``
    (:meth:`fedsim.data.Dataset.from_arrays`) replaces ``data.dataset``.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        *,
        model: nn.Module | None = None,
        partition: Sequence[Sequence[int]] | Callable[..., Any] | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        self.cfg = cfg
        self.data: FederatedData = cfg.data.build(cfg.seed, partition=partition, dataset=dataset)
        per_round = getattr(cfg.algorithm, "clients_per_round", None)
        uniform = getattr(getattr(cfg.algorithm, "participation", None), "kind", "uniform") == "uniform"
        if per_round is not None and uniform and per_round > self.data.num_clients:  # a natural split decides the count
            raise FedsimError(f"algorithm.clients_per_round: {per_round} exceeds the {self.data.num_clients} clients of "
                              f"{self.data.name}'s {cfg.data.partition.kind} partition (allowed: 1..{self.data.num_clients})")
        self.holdout: list[torch.Tensor] | None = None
        if cfg.evaluation.client_holdout > 0:
            self.data, self.holdout = split_client_holdout(self.data, cfg.evaluation.client_holdout, cfg.seed)
        module = model if model is not None else cfg.model.build(cfg.seed, self.data)
        self.model = FunctionalModel(module)
        self.initial_params = self.model.initial_params()
        self.algorithm = cfg.algorithm.build(
            BuildContext(seed=cfg.seed, data=self.data, spec=self.model.spec, topology=cfg.topology, privacy=cfg.privacy,
                         systems=cfg.systems)
        )
        attach_robustness(self.algorithm, cfg.robustness, self.data, cfg.seed)
        self.algorithm = cfg.compression.wrap(self.algorithm, self.model.spec, cfg.seed)
        self.stop_reason: str | None = None
        self.divergence: dict[str, Any] | None = None
        self.runtime = cfg.runtime.build(self.model, self.data, cfg.seed)

    def evaluate(self, params: torch.Tensor) -> tuple[float, float]:
        data = self.runtime.data
        return evaluate(self.model, params.to(data.x_test.device), data.x_test, data.y_test, noise_seed=self.eval_noise_seed)

    @property
    def eval_noise_seed(self) -> int:
        """Seed of a noise model's evaluation noise, the ``(seed, "eval_noise")`` stream: every evaluation
        (each round's, the summary's, ``fedsim robustness eval``'s) sees the same realization."""
        return derive_seed(self.cfg.seed, "eval_noise")

    def evaluate_robust(self, params: torch.Tensor, section: RobustEvaluationConfig | None = None, *, per_round: bool = False) -> dict[str, float]:
        """Robust metrics of ``params`` on the first ``samples`` test points (``robustness.evaluation``).

        ``per_round``: only the first attack at its first radius (the cheap per-round metric).
        """
        section = section if section is not None else (self.cfg.robustness.evaluation if self.cfg.robustness else None)
        if section is None:
            return {}
        data = self.runtime.data
        x, y = data.x_test[: section.samples], data.y_test[: section.samples]
        params = params.to(x.device)
        attacks = section.attack_list()
        if per_round:
            spec, radii = attacks[0]
            return {k: v for k, v in robust_report(self.model, params, x, y, attacks=[(spec, radii[:1])], distance_norms=(),
                                                       noise_seed=self.eval_noise_seed).items()
                    if k != "clean_acc"}
        return robust_report(self.model, params, x, y, attacks=attacks, distance_norms=tuple(section.distance_norms),
                             distance_max={str(k): v for k, v in section.distance_max.items()}, bisection_steps=section.bisection_steps, seed_generator=torch_generator(self.cfg.seed, "robust_eval"),
                             noise_seed=self.eval_noise_seed)

    def evaluate_clients(self, params: torch.Tensor) -> dict[str, float]:
        """Mean, 10th percentile and worst accuracy over the clients' held-out splits (if configured)."""
        if self.holdout is None:
            return {}
        data = self.runtime.data
        return fairness_metrics(client_accuracies(self.model, params.to(data.x_train.device), data.x_train, data.y_train, self.holdout,
                                                  noise_seed=self.eval_noise_seed))

    def run(
        self, folder: RunFolder, progress: Callable[[dict[str, Any]], None] | None = None, resume: Checkpoint | None = None,
        trackers: Sequence[RunTracker] = (),
    ) -> RunResult:
        """Run every round into ``folder``; with ``resume``, continue after its last completed round.

        ``trackers`` get every metrics row and, at the end, the summary (whatever the end).
        """
        cfg = self.cfg
        if resume is None:
            folder.write_config(dump_config(cfg))
            state, first, history = self.algorithm.init(self.initial_params), 0, []
        else:
            self.algorithm.load_state_dict(resume.algorithm)
            state, first, history = resume.server, resume.rounds_done, list(resume.history)
            folder.rewrite_metrics(history)  # drop rows of rounds after the checkpoint
        rounds = cfg.algorithm.rounds
        start = time.perf_counter() - (history[-1]["wall_s"] if history else 0.0)
        status = "completed"
        # SIGTERM (a scheduler, `kill`, `timeout`) unwinds like Ctrl-C: completed rounds kept, summary written.
        on_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, raise_terminated) if on_main else None
        try:
            for rnd in range(first, rounds):
                stop = self.algorithm.stop_reason(rnd)
                if stop is not None:
                    status, self.stop_reason = "stopped", stop
                    break
                metrics = self.algorithm.round(state, rnd, self.runtime)
                row: dict[str, Any] = {
                    "round": rnd + 1,
                    "test_accuracy": None,
                    "test_loss": None,
                    "train_loss": metrics.train_loss,
                    "clients": metrics.clients,
                    "bytes_up": metrics.bytes_up,
                    "bytes_down": metrics.bytes_down,
                }
                bad = _non_finite(train_loss=metrics.train_loss, parameters=state.params)
                if bad is None and ((rnd + 1) % cfg.evaluation.every == 0 or rnd + 1 == rounds):
                    row["test_accuracy"], row["test_loss"] = self.evaluate(self.algorithm.eval_params(state))
                    row.update(self.algorithm.evaluate_extra(state, self.evaluate))
                    row.update(self.evaluate_clients(self.algorithm.eval_params(state)))
                    robust = cfg.robustness.evaluation if cfg.robustness else None
                    if robust is not None and robust.per_round:
                        row.update(self.evaluate_robust(self.algorithm.eval_params(state), per_round=True))
                    bad = _non_finite(test_loss=row["test_loss"])
                row.update(metrics.extra)
                row["wall_s"] = time.perf_counter() - start
                folder.append_metrics(row)  # non-finite values are written as null
                history.append(row)
                every = cfg.output.checkpoint_every
                if bad is None and every and ((rnd + 1) % every == 0 or rnd + 1 == rounds):
                    save_checkpoint(folder.path, Checkpoint(rnd + 1, state, self.algorithm.state_dict(), history))
                for tracker in trackers:
                    tracker.log_round(row)
                if progress:
                    progress(row)
                if bad is not None:  # nothing after this round means anything: stop, and say why
                    status = "diverged"
                    self.divergence = {"round": rnd + 1, "quantity": bad, "hint": self._divergence_hint()}
                    break
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as Terminated
            status = "interrupted"
            raise
        finally:
            try:
                if cfg.privacy is not None or cfg.robustness is not None:  # the trained model, for `fedsim privacy audit` / `robustness eval`
                    torch.save(self.algorithm.eval_params(state).detach().cpu(), folder.path / "params.pt")
                    (folder.path / "params.pt").chmod(FILE_MODE)
                summary = self._summary(history, status, time.perf_counter() - start)
                if status == "completed" and cfg.robustness is not None and cfg.robustness.evaluation is not None:
                    summary["robustness"] = self.evaluate_robust(self.algorithm.eval_params(state))
                folder.write_summary(summary)
                if cfg.output.plot and history:
                    from fedsim.plotting import plot_curves  # matplotlib only when a plot is drawn, not before round 1

                    plot_curves(history, folder.path / "curves.png", title=_plot_title(cfg))
                    (folder.path / "curves.png").chmod(FILE_MODE)
                for tracker in trackers:
                    tracker.finish(summary)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        return RunResult(folder.path, history, summary, self.algorithm.eval_params(state).detach().cpu())

    def _summary(self, history: list[dict[str, Any]], status: str, wall_s: float) -> dict[str, Any]:
        accs = [r["test_accuracy"] for r in history if r["test_accuracy"] is not None]
        return {
            "status": status,
            **({"stop_reason": self.stop_reason} if self.stop_reason else {}),
            **({"divergence": self.divergence} if self.divergence else {}),
            "final_accuracy": accs[-1] if accs else None,
            "best_accuracy": max(accs) if accs else None,
            "rounds": len(history),
            "wall_s": wall_s,
            "seed": self.cfg.seed,
            "fedsim_version": __version__,
            "config_sha256": config_sha256(self.cfg),
            "bytes_up": sum(r["bytes_up"] for r in history),
            "bytes_down": sum(r["bytes_down"] for r in history),
            **self.algorithm.summary(),
        }


    def _divergence_hint(self) -> str:
        lr = getattr(self.cfg.algorithm, "lr", None)
        return f"lower algorithm.lr (now {lr:g})" if lr is not None else "lower the step sizes"


def _non_finite(**quantities: float | torch.Tensor | None) -> str | None:
    """The name of the first quantity that is not finite (a loss, or any entry of a parameter tensor)."""
    for name, value in quantities.items():
        if value is None:
            continue
        if isinstance(value, torch.Tensor):
            if not bool(torch.isfinite(value).all()):
                return name
        elif not math.isfinite(value):
            return name
    return None


def _plot_title(cfg: ExperimentConfig) -> str:
    """The curves' title from the config, not the folder name (a `$` or an emoji there is not text to matplotlib)."""
    return f"{cfg.algorithm.kind} on {cfg.data.dataset}, {cfg.data.num_clients} clients, seed {cfg.seed}"


def resume(run_dir: str | Path, *, progress: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its checkpoint (``fedsim run --resume``).

    The config is the run's own ``config.yaml``; the continued run's metrics and final model
    equal those of a run that was never interrupted.
    """
    run_dir = Path(run_dir)
    cfg = resolve_config(run_dir / "config.yaml")
    every = cfg.output.checkpoint_every
    checkpoint = load_checkpoint(run_dir, min(every, cfg.algorithm.rounds) if every else None)
    experiment = Experiment(cfg)
    try:
        return experiment.run(RunFolder(run_dir), progress, resume=checkpoint)
    finally:
        experiment.runtime.close()


def run(
    config: ExperimentConfig | dict[str, Any] | str | Path,
    overrides: Iterable[str] = (),
    *,
    model: nn.Module | None = None,
    partition: Sequence[Sequence[int]] | Callable[..., Any] | None = None,
    dataset: Dataset | None = None,
    out: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    trackers: Sequence[RunTracker] | None = None,
) -> RunResult:
    """Run an experiment and write its run folder.

    Parameters
    ----------
    config : path, mapping or ExperimentConfig
        The experiment; a path is read as YAML.
    overrides : iterable of str
        ``section.key=value`` overrides, as ``fedsim run --set``.
    model : nn.Module, optional
        Your own torch model (stateless: no buffers) instead of ``config.model``.
    partition : index lists or callable, optional
        Your own client split instead of ``config.data.partition``.
    dataset : Dataset, optional
        Your own arrays (``fedsim.data.Dataset.from_arrays(x, y, client_id=...)``) instead of ``data.dataset``.
    out : path, optional
        Run folder instead of ``config.output.dir``.
    progress : callable, optional
        Called with each round's metrics row.
    trackers : sequence of RunTracker, optional
        Experiment trackers; ``output.trackers`` in the config needs them built by
        ``fedsim.run`` (:func:`fedsim.tracking.run`), which this function refuses to guess.
    """
    cfg = resolve_config(config, overrides)
    if trackers is None and cfg.output.trackers:
        raise FedsimError(f"output.trackers: {', '.join(cfg.output.trackers)} are built by fedsim.run (fedsim.tracking.run), "
                          "not fedsim.experiment.run")
    experiment = Experiment(cfg, model=model, partition=partition, dataset=dataset)
    folder = RunFolder.create(out if out is not None else cfg.output.dir)
    try:
        return experiment.run(folder, progress, trackers=trackers or ())
    finally:
        experiment.runtime.close()
