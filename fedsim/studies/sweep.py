"""Sweeps: a grid of config values times seeds, one fedsim run per trial, mean +- std per grid point.

A sweep is expanded (:func:`expand`: the product of the grid keys, each ``zip`` group as one more
factor, every point once per seed), every trial's config is validated before anything is written,
and the trials run on one of three backends:

- ``tune``: Ray Tune (``ray.tune.Tuner``), each trial a function trainable with its own resources
  (``tune.with_resources``), retried up to ``max_failures`` times (``FailureConfig``);
- ``pool``: a local process pool (``spawn``), the same retries, for machines without Ray;
- ``inline``: one after the other in this process (the studies' default for small sweeps).

Each trial is a run folder ``trials/<name>`` exactly as ``fedsim run`` writes it, plus
``trial.json`` (attempt, pid, host, seconds from start to end including data loading) and, after a
failure, ``error.txt``. A trial counts as done when its ``summary.json`` says ``completed`` or
``stopped`` (a privacy budget reached); ``resume=True`` skips those. The sweep folder gets
``sweep.json`` (grid, seeds, trials), ``sweep.csv`` (one row per trial), ``table.md`` (one row per
grid point: mean +- sample standard deviation over seeds) and ``curves.png`` (mean test accuracy
and loss per round with a +-1 std band).

Trials that share a process (the inline backend, a pool worker, a reused Ray worker) do not share
torch's thread setting, default dtype, global random states or environment: :func:`isolated`
sets them for the trial and restores them afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import itertools
import json
import math
import os
import random
import re
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from fedsim._version import __version__
from fedsim.config.loading import read_yaml, validate_config
from fedsim.config.schema import ExperimentConfig
from fedsim.config.sweep import SweepConfig
from fedsim.errors import FedsimError
from fedsim.output import read_metrics, write_json_atomic

__all__ = [
    "Trial", "TrialOutcome", "SweepResult", "expand", "plan", "run_sweep", "run_trial", "isolated", "aggregate",
    "mean_std", "read_sweep", "BACKENDS",
]

BACKENDS = ("auto", "tune", "pool", "inline")
DONE = ("completed", "stopped")  # trials whose numbers count
FINISHED = (*DONE, "diverged")  # trials a resume does not rerun (a diverged run diverges again)
# Final metrics of a trial, from its summary (and the last metrics row where noted).
METRICS = ("final_accuracy", "best_accuracy", "final_test_loss", "epsilon", "rounds", "bytes_up", "bytes_down",
           "final_consensus_distance", "final_node_accuracy_mean", "wall_s")
TABLE_METRICS = ("final_accuracy", "best_accuracy", "epsilon", "final_consensus_distance", "bytes_up", "wall_s")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its grid point, seed, folder name and fully resolved config (a JSON mapping)."""

    index: int
    point: dict[str, Any]
    seed: int
    name: str
    config: dict[str, Any]

    def label(self) -> str:
        return point_label(self.point)


@dataclass
class TrialOutcome:
    """What a finished (or skipped, or failed) trial left in its folder."""

    trial: Trial
    dir: Path
    status: str  # completed | stopped | diverged | failed | skipped (finished earlier; resume)
    attempts: int
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A trial whose numbers enter the table (completed or stopped, now or before a resume)."""
        return self.summary.get("status") in DONE and self.status != "failed"

    @property
    def diverged(self) -> bool:
        return self.summary.get("status") == "diverged"

    def history(self) -> list[dict[str, Any]]:
        return read_metrics(self.dir) if (self.dir / "metrics.jsonl").exists() else []

    def metrics(self) -> dict[str, Any]:
        """The trial's final metrics (None where the run has none, e.g. epsilon without privacy)."""
        s, history = self.summary, self.history() if self.summary else []
        last = history[-1] if history else {}
        evaluated = [r for r in history if r.get("test_loss") is not None]
        return {
            "final_accuracy": s.get("final_accuracy"),
            "best_accuracy": s.get("best_accuracy"),
            "final_test_loss": evaluated[-1]["test_loss"] if evaluated else None,
            "epsilon": (s.get("privacy") or {}).get("epsilon"),
            "rounds": s.get("rounds"),
            "bytes_up": s.get("bytes_up"),
            "bytes_down": s.get("bytes_down"),
            "final_consensus_distance": last.get("consensus_distance"),
            "final_node_accuracy_mean": last.get("node_accuracy_mean"),
            "wall_s": s.get("wall_s"),
        }


@dataclass
class SweepResult:
    """A finished sweep: its folder, the trials' outcomes and the per-point aggregate."""

    out: Path
    outcomes: list[TrialOutcome]
    table: list[dict[str, Any]]
    keys: list[str]
    wall_s: float
    backend: str

    @property
    def failed(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def diverged(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.diverged]


# --------------------------------------------------------------------------- grid


def expand(grid: Mapping[str, Sequence[Any]], zips: Sequence[Mapping[str, Sequence[Any]]] = ()) -> list[dict[str, Any]]:
    """Grid points: the product of every grid key's values (first key slowest), each zip group one factor.

    >>> expand({"a": [1, 2]}, [{"b": [3, 4], "c": [5, 6]}])
    [{'a': 1, 'b': 3, 'c': 5}, {'a': 1, 'b': 4, 'c': 6}, {'a': 2, 'b': 3, 'c': 5}, {'a': 2, 'b': 4, 'c': 6}]
    """
    factors: list[list[dict[str, Any]]] = [[{key: v} for v in values] for key, values in grid.items()]
    for group in zips:
        lengths = {len(v) for v in group.values()}
        if len(lengths) > 1:
            raise FedsimError(f"sweep.zip: keys {', '.join(group)} need lists of one length")
        factors.append([{key: group[key][i] for key in group} for i in range(lengths.pop())] if group else [{}])
    return [dict(item for part in combo for item in part.items()) for combo in itertools.product(*factors)]


def short_keys(keys: Sequence[str]) -> list[str]:
    """The last part of each dotted key (the whole key where two would collide): column titles, labels."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    return [s if short.count(s) == 1 else k for s, k in zip(short, keys)]


def point_label(point: Mapping[str, Any]) -> str:
    """``lr=0.05, alpha=0.1``: a grid point with :func:`short_keys`."""
    names = short_keys(list(point))
    return ", ".join(f"{n}={_show(v)}" for n, v in zip(names, point.values())) or "(base config)"


def _show(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)


def _trial_name(index: int, point: Mapping[str, Any], seed: int) -> str:
    label = point_label(point).replace(", ", "_")
    label = re.sub(r"[^A-Za-z0-9.=_+-]+", "-", label)[:80] if point else "base"
    return f"{index:03d}-{label}_seed{seed}"


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def plan(
    base: Mapping[str, Any],
    spec: SweepConfig,
    out: Path,
    *,
    source: str = "config",
    check: Callable[[ExperimentConfig], None] | None = None,
) -> list[Trial]:
    """Every trial of the sweep, each config validated (and ``check``-ed); the first bad one raises.

    Nothing is written. A failing trial's error names the grid point: ``sweep: lr=abc (seed 0): ...``.
    """
    points = expand(spec.grid, spec.zip)
    seeds = spec.seeds if spec.seeds is not None else [int(base.get("seed", 0) or 0)]
    trials = []
    for index, (point, seed) in enumerate(itertools.product(points, seeds)):
        raw = copy.deepcopy(dict(base))
        raw.pop("sweep", None)
        for key, value in point.items():
            _set(raw, key, value)
        raw["seed"] = seed
        name = _trial_name(index, point, seed)
        _set(raw, "output.dir", str((out / "trials" / name).resolve()))
        where = ", ".join(f"{k}={_show(v)}" for k, v in point.items()) or "base config"
        try:
            cfg = validate_config(raw, source)
            if check is not None:
                check(cfg)
        except FedsimError as exc:
            raise FedsimError(f"sweep: {where} (seed {seed}): {exc}") from None
        trials.append(Trial(index, point, seed, name, cfg.model_dump(mode="json")))
    return trials


# --------------------------------------------------------------------------- one trial


@contextlib.contextmanager
def isolated(threads: int, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run a trial with its own torch threads, default dtype, random states and environment; restore them after.

    fedsim draws every random number from derived generators, so the global states only matter to
    user code (a custom model's init); they are reset to fixed values so that a trial's result does
    not depend on what ran before it in the same process.
    """
    saved_threads, saved_dtype = torch.get_num_threads(), torch.get_default_dtype()
    saved_torch, saved_np, saved_py = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    try:
        torch.set_num_threads(max(1, threads))
        torch.set_default_dtype(torch.float32)
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        os.environ.update(env or {})
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.set_default_dtype(saved_dtype)
        torch.random.set_rng_state(saved_torch)
        np.random.set_state(saved_np)
        random.setstate(saved_py)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _done(path: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("status") in FINISHED else None


def run_trial(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one trial (a job from :func:`_job`) into its folder; raise on failure after noting it in ``error.txt``.

    A folder with a done ``summary.json`` is left alone (Tune's or the pool's retry of a trial
    that finished, or a resumed sweep); any other content is cleared first, so every attempt
    starts from scratch.
    """
    from fedsim.experiment import Experiment
    from fedsim.output import RunFolder
    from fedsim.tracking import open_trackers

    path = Path(job["dir"])
    summary = _done(path)
    if summary is not None:
        return {"status": summary["status"], "skipped": True}
    errors = path / "error.txt"
    if path.exists():
        for child in path.iterdir():
            if child != errors:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    attempt = 1 + (errors.read_text().count("\n--- attempt") if errors.exists() else 0)
    start = time.perf_counter()
    env = {k: v for k, v in (job.get("env") or {}).items() if k != "FEDSIM_DATA" or Path(v).is_dir()}
    with isolated(job["threads"], env):
        try:
            cfg = validate_config(job["config"], job["name"])
            experiment = Experiment(cfg)
            try:
                trackers = open_trackers(cfg, path, experiment=job.get("tracking_experiment"), tags=job.get("tags"))
                result = experiment.run(RunFolder(path), trackers=trackers)
            finally:
                experiment.runtime.close()
        except BaseException as exc:
            # experiment.run writes summary.json on the way out; a failed attempt must not look done.
            (path / "summary.json").unlink(missing_ok=True)
            with errors.open("a") as fh:
                fh.write(f"--- attempt {attempt} (pid {os.getpid()} on {socket.gethostname()}): "
                         f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}\n")
            raise
    write_json_atomic(path / "trial.json", {
        "name": job["name"], "point": job["point"], "seed": job["seed"], "attempt": attempt, "pid": os.getpid(),
        "host": socket.gethostname(), "elapsed_s": time.perf_counter() - start, "threads": job["threads"],
    })
    return {"status": result.summary["status"], "skipped": False}


def _job(trial: Trial, out: Path, threads: int, tracking_experiment: str) -> dict[str, Any]:
    env = {}
    # Paths resolved here, in the sweep's directory: a Tune worker runs in a directory of its own.
    if os.environ.get("FEDSIM_DATA"):
        env["FEDSIM_DATA"] = str(Path(os.environ["FEDSIM_DATA"]).resolve())
    if "mlflow" in trial.config["output"].get("trackers", []):
        from fedsim.tracking.mlflow import tracking_uri

        env["MLFLOW_TRACKING_URI"] = tracking_uri()
        if env["MLFLOW_TRACKING_URI"].startswith("file:"):
            env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    return {
        "name": trial.name, "dir": str((out / "trials" / trial.name).resolve()), "config": trial.config,
        "point": trial.point, "seed": trial.seed, "threads": threads, "env": env,
        "tracking_experiment": tracking_experiment,
        "tags": {"fedsim.sweep": str(out), "fedsim.trial": trial.name, **{f"grid.{k}": _show(v) for k, v in trial.point.items()}},
    }


def _with_retries(job: Mapping[str, Any], max_failures: int) -> None:
    for attempt in range(max_failures + 1):
        try:
            run_trial(job)
            return
        except Exception:  # noqa: BLE001 - noted in error.txt; the sweep goes on
            if attempt == max_failures:
                return


# --------------------------------------------------------------------------- backends


def _run_inline(jobs: list[dict[str, Any]], max_failures: int, done: Callable[[str], None]) -> None:
    for job in jobs:
        _with_retries(job, max_failures)
        done(job["name"])


def _run_pool(jobs: list[dict[str, Any]], parallel: int, max_failures: int, done: Callable[[str], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn: a forked child would inherit torch's thread pools and whatever the parent imported.
    with ProcessPoolExecutor(max_workers=min(parallel, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_with_retries, job, max_failures): job["name"] for job in jobs}
        for future in as_completed(futures):
            try:
                future.result()  # _with_retries notes trial errors in error.txt and returns
            except BrokenProcessPool:
                pass  # a worker died (killed, out of memory): its trials have no summary and count as failed
            done(futures[future])


def _tune_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    status = run_trial(config["job"])
    tune.report({"status": status["status"], "skipped": status["skipped"]})


def _progress_callback(done: Callable[[str], None]) -> Any:
    """A Tune callback calling ``done(trial name)`` as trials end (Tune pickles its callbacks: ``done`` is not pickled)."""
    from ray import tune

    class Progress(tune.Callback):
        def __init__(self, fn: Callable[[str], None]) -> None:
            self.done: Callable[[str], None] | None = fn

        def __getstate__(self) -> dict[str, Any]:
            return {"done": None}

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:  # noqa: ARG002
            if self.done is not None:
                self.done(trial.config["job"]["name"])

        on_trial_error = on_trial_complete

    return Progress(done)


def _run_tune(jobs: list[dict[str, Any]], out: Path, *, parallel: int | None, cpus: float, gpus: float, max_failures: int,
              address: str | None, done: Callable[[str], None]) -> None:
    # Tune's CSV and TensorBoardX loggers repeat what each trial folder holds (only its JSON logger,
    # which its result grid reads, is kept); its console summary repeats the table printed at the end.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    started = not ray.is_initialized()
    if started:
        # "local": a new Ray of our own; None would attach to whatever Ray another process started here.
        ray.init(address=address or "local", include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(_tune_trainable, {"cpu": cpus, "gpu": gpus}),
            param_space={"job": tune.grid_search(jobs)},
            tune_config=tune.TuneConfig(
                # Reused workers save a process start and the imports per trial; isolated() keeps trials apart.
                max_concurrent_trials=parallel, reuse_actors=True,
                trial_name_creator=lambda t: t.config["job"]["name"], trial_dirname_creator=lambda t: t.config["job"]["name"],
            ),
            run_config=tune.RunConfig(
                name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str((out / "tune").resolve()),
                failure_config=tune.FailureConfig(max_failures=max_failures), verbose=0, callbacks=[JsonLoggerCallback(), _progress_callback(done)],
            ),
        )
        tuner.fit()  # failed trials are in error.txt; Tune's ResultGrid is not needed to report them
    finally:
        if started:
            ray.shutdown()


def _resolve_backend(backend: str, address: str | None) -> str:
    if backend not in BACKENDS:
        raise FedsimError(f"sweep: backend {backend!r} is not allowed (allowed: {', '.join(BACKENDS)})")
    if backend == "auto":
        try:
            import ray.tune  # noqa: F401
        except ImportError:
            if address is not None:
                raise FedsimError("sweep: --address needs Ray Tune: pip install -e '.[ray]'") from None
            return "pool"
        return "tune"
    if backend == "tune":
        try:
            import ray.tune  # noqa: F401
        except ImportError:
            raise FedsimError("sweep: backend tune needs Ray Tune: pip install -e '.[ray]'") from None
    elif address is not None:
        raise FedsimError(f"sweep: --address is for the tune backend, not {backend}")
    return backend


# --------------------------------------------------------------------------- statistics and outputs


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation (ddof=1) of the values that are not None; std is None below 2."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None, None, 0
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return mean, std, len(xs)


def aggregate(outcomes: Sequence[TrialOutcome]) -> list[dict[str, Any]]:
    """One row per grid point (in grid order): its seeds' count and mean/std of every final metric."""
    groups: dict[str, list[TrialOutcome]] = {}
    for o in outcomes:
        groups.setdefault(json.dumps(o.trial.point, sort_keys=True), []).append(o)
    rows = []
    for members in groups.values():
        ok = [o for o in members if o.ok]
        metrics = [o.metrics() for o in ok]
        row: dict[str, Any] = {"point": members[0].trial.point, "label": members[0].trial.label(),
                               "seeds": [o.trial.seed for o in ok], "trials": len(members)}
        for key in METRICS:
            mean, std, n = mean_std([m[key] for m in metrics])
            row[key] = {"mean": mean, "std": std, "n": n}
        rows.append(row)
    return rows


def _fmt(stat: Mapping[str, Any], key: str) -> str:
    if stat["mean"] is None:
        return "-"
    spec = ",.0f" if key in ("bytes_up", "bytes_down") else (".1f" if key in ("wall_s", "rounds") else ".4g" if "epsilon" in key or "distance" in key else ".4f")
    std = "" if stat["std"] is None else f" ± {format(stat['std'], spec)}"
    return f"{format(stat['mean'], spec)}{std}"


def table_columns(table: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table's metric columns: those of :data:`TABLE_METRICS` some grid point has."""
    return [k for k in TABLE_METRICS if any(r[k]["mean"] is not None for r in table)]


def table_markdown(table: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    """``table.md``: one row per grid point, ``mean ± std`` over seeds (sample std, ddof=1)."""
    metrics = table_columns(table)
    header = [*keys, "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table:
        cells = [_show(r["point"][k]) for k in keys] + [f"{len(r['seeds'])}/{r['trials']}"] + [_fmt(r[m], m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nmean ± sample standard deviation (ddof=1) over the seeds that completed; seeds: completed/planned.\n"


def _csv_rows(outcomes: Sequence[TrialOutcome], keys: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    metrics = [m for m in METRICS if any(o.metrics()[m] is not None for o in outcomes)]
    header = ["trial", *keys, "seed", "status", "attempts", *metrics, "run_dir", "error"]
    rows = []
    for o in outcomes:
        m = o.metrics()
        rows.append([o.trial.name, *(_show(o.trial.point[k]) for k in keys), o.trial.seed,
                     o.summary.get("status", o.status), o.attempts,
                     *("" if m[k] is None else m[k] for k in metrics), f"trials/{o.trial.name}", o.error or ""])
    return header, rows


def plot_bands(outcomes: Sequence[TrialOutcome], path: Path | IO[bytes], title: str = "") -> None:
    """Mean test accuracy and test loss per round for each grid point, with a +-1 std band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[TrialOutcome]] = {}
    for o in outcomes:
        if o.ok:
            groups.setdefault(o.trial.label(), []).append(o)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    palette = plt.cm.tab10 if len(groups) <= 10 else plt.cm.tab20
    for i, (label, members) in enumerate(groups.items()):
        color = palette(i % palette.N)
        histories = [o.history() for o in members]
        for ax, key in zip(axes, ("test_accuracy", "test_loss")):
            per_round: dict[int, list[float]] = {}
            for h in histories:
                for r in h:
                    if r.get(key) is not None:
                        per_round.setdefault(r["round"], []).append(r[key])
            # Only rounds every seed evaluated: a band over fewer seeds would change meaning mid-curve.
            rounds = sorted(k for k, v in per_round.items() if len(v) == len(histories))
            if not rounds:
                continue
            values = np.array([per_round[k] for k in rounds])
            mean = values.mean(axis=1)
            std = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros_like(mean)
            ax.plot(rounds, mean, color=color, marker="." if len(rounds) < 40 else None,
                    label=f"{label} (n={values.shape[1]})")
            ax.fill_between(rounds, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    axes[0].set(xlabel="round", ylabel="test accuracy", title="test accuracy: mean ± 1 std over seeds")
    axes[1].set(xlabel="round", ylabel="test loss (cross-entropy)", title="test loss: mean ± 1 std over seeds")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    # Below the plots, not over them: a grid has many points.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, max(1, len(labels))), fontsize="small")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _outcome(trial: Trial, out: Path, skipped: bool) -> TrialOutcome:
    path = out / "trials" / trial.name
    summary = _done(path)
    errors = path / "error.txt"
    text = errors.read_text() if errors.exists() else ""
    failures = text.count("--- attempt")
    if summary is not None:
        error = None
        if summary["status"] == "diverged":
            d = summary.get("divergence") or {}
            error = f"diverged: non-finite {d.get('quantity', 'value')} in round {d.get('round', '?')}"
        return TrialOutcome(trial, path, "skipped" if skipped else summary["status"], failures + 1, summary, error)
    last = text.rsplit("--- attempt", 1)[-1].split("\n", 1)[0].split(": ", 1)[-1] if text else "did not finish (no summary.json)"
    return TrialOutcome(trial, path, "failed", failures, {}, last.strip())


def _keys(spec: SweepConfig) -> list[str]:
    return [*spec.grid, *(k for group in spec.zip for k in group)]


def write_outputs(out: Path, spec: SweepConfig, outcomes: Sequence[TrialOutcome], *, backend: str, wall_s: float,
                  source: str, plot: bool = True) -> list[dict[str, Any]]:
    """``sweep.json``, ``sweep.csv``, ``table.md`` and (with ``plot``) ``curves.png``; return the aggregate table."""
    keys = _keys(spec)
    table = aggregate(outcomes)
    header, rows = _csv_rows(outcomes, keys)
    with (out / "sweep.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    (out / "table.md").write_text(table_markdown(table, keys))
    write_json_atomic(out / "sweep.json", {
        "config": source, "fedsim_version": __version__, "backend": backend, "wall_s": wall_s,
        "grid": spec.grid, "zip": spec.zip, "seeds": sorted({o.trial.seed for o in outcomes}), "keys": keys,
        "sweep": spec.model_dump(mode="json"),
        "trials": [{"name": o.trial.name, "dir": f"trials/{o.trial.name}", "point": o.trial.point, "seed": o.trial.seed,
                    "status": o.status, "attempts": o.attempts, "error": o.error} for o in outcomes],
        "table": table,
    })
    if plot and any(o.ok for o in outcomes):
        plot_bands(outcomes, out / "curves.png", title=out.name)
    return table


def read_sweep(out: str | Path) -> tuple[dict[str, Any], list[TrialOutcome]]:
    """``sweep.json`` of a sweep folder and its trials' outcomes, as on disk now."""
    out = Path(out)
    try:
        meta = json.loads((out / "sweep.json").read_text())
    except (OSError, ValueError):
        raise FedsimError(f"{out}: not a sweep folder (no readable sweep.json)") from None
    outcomes = []
    for i, t in enumerate(meta["trials"]):
        trial = Trial(i, t["point"], t["seed"], t["name"], {})
        outcomes.append(_outcome(trial, out, t["status"] == "skipped"))
    return meta, outcomes


# --------------------------------------------------------------------------- the sweep


def load_base(config: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The raw config mapping and a name for it in error messages."""
    if isinstance(config, (str, Path)):
        return read_yaml(config), str(config)
    return copy.deepcopy(dict(config)), "config"


def run_sweep(
    config: str | Path | Mapping[str, Any],
    spec: SweepConfig | None = None,
    *,
    out: str | Path,
    backend: str = "auto",
    parallel: int | None = None,
    address: str | None = None,
    resume: bool = False,
    check: Callable[[ExperimentConfig], None] | None = None,
    progress: Callable[[TrialOutcome], None] | None = None,
    plot: bool = True,
    source: str | None = None,
) -> SweepResult:
    """Run every trial of ``spec`` (default: the config's ``sweep:`` section) into ``out``; write the outputs.

    Parameters
    ----------
    config : path or mapping
        The base experiment; grid values replace its keys.
    spec : SweepConfig, optional
        Grid, zip groups, seeds, retries, per-trial resources.
    out : path
        Sweep folder. Without ``resume`` it must be empty or absent.
    backend : {"auto", "tune", "pool", "inline"}
        ``auto``: Ray Tune when installed, else the process pool.
    parallel : int, optional
        Trials at once (default ``spec.parallel``; Tune: as many as the cluster's CPUs allow; pool: 1).
    address : str, optional
        Ray cluster (``auto``, ``ray://host:10001``); default: start Ray locally.
    resume : bool
        Skip trials whose folder holds a completed run; rerun the others.
    check : callable, optional
        Extra validation of every trial's config (raise :class:`FedsimError`), before anything runs.
    progress : callable, optional
        Called with each trial's outcome as it finishes.
    plot : bool
        Write ``curves.png``.
    source : str, optional
        The config's name in error messages (default: its path).
    """
    base, name = load_base(config)
    source = source or name
    if spec is None:
        raw = base.get("sweep")
        spec = SweepConfig.model_validate(raw) if raw else SweepConfig()
    out = Path(out)
    trials = plan(base, spec, out, source=source, check=check)
    previous = out / "sweep.json"
    if resume:
        if previous.exists():
            meta = json.loads(previous.read_text())
            if [t["name"] for t in meta["trials"]] != [t.name for t in trials]:
                raise FedsimError(f"sweep --resume: {out} holds a different grid ({len(meta['trials'])} trials); "
                                  "resume with the same config, grid and seeds")
    elif out.exists() and any(out.iterdir()):
        raise FedsimError(f"sweep: {out} is not empty; choose another --out or add --resume")
    backend = _resolve_backend(backend, address)
    if backend != "tune" and spec.resources.gpus > 0:
        raise FedsimError(f"sweep.resources.gpus: GPU shares are reserved by Ray Tune only, not the {backend} backend "
                          "(trials still use runtime.device)")
    if backend == "inline" and (parallel or spec.parallel or 1) > 1:
        raise FedsimError("sweep: --parallel needs the pool or tune backend (inline runs one trial at a time)")
    cfgs = [validate_config(t.config) for t in trials]
    from fedsim.tracking import check_trackers

    check_trackers(cfgs[0].output.trackers if cfgs else [])

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    threads = max(1, int(spec.resources.cpus))
    jobs, skipped = [], set()
    for trial in trials:
        path = out / "trials" / trial.name
        if resume and _done(path) is not None:
            skipped.add(trial.name)
            continue
        (path / "error.txt").unlink(missing_ok=True)  # a rerun's attempts count from 1
        jobs.append(_job(trial, out, threads, tracking_experiment=out.resolve().name))
    by_name = {t.name: t for t in trials}

    def done(name: str) -> None:
        if progress is not None:
            progress(_outcome(by_name[name], out, False))

    for name in skipped:
        if progress is not None:
            progress(_outcome(by_name[name], out, True))
    max_failures = spec.max_failures
    if jobs:
        if backend == "inline":
            _run_inline(jobs, max_failures, done)
        elif backend == "pool":
            _run_pool(jobs, parallel or spec.parallel or 1, max_failures, done)
        else:
            _run_tune(jobs, out, parallel=parallel or spec.parallel, cpus=spec.resources.cpus, gpus=spec.resources.gpus,
                      max_failures=max_failures, address=address, done=done)
    wall_s = time.perf_counter() - start
    outcomes = [_outcome(t, out, t.name in skipped) for t in trials]
    table = write_outputs(out, spec, outcomes, backend=backend, wall_s=wall_s, source=source, plot=plot)
    return SweepResult(out, outcomes, table, _keys(spec), wall_s, backend)
