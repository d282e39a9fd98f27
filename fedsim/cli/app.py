"""``fedsim run``, ``fedsim validate`` and ``fedsim --version``; sub-apps are mounted at the bottom."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from fedsim._version import __version__

app = typer.Typer(
    name="fedsim",
    help="Federated and decentralized learning simulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
EXIT_DIVERGED = 3  # a run whose loss or parameters stopped being finite
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended


#: Set by :func:`fedsim.cli.main` (the process entry point, through :func:`freeze_start_up`): the
#: objects that survive a run's start-up are then frozen out of the garbage collector (see
#: :func:`start_up`). False where the app runs inside another process (``typer.testing.CliRunner``),
#: whose objects are not ours to freeze.
FREEZE_START_UP = False


def freeze_start_up() -> None:
    """Let :func:`start_up` freeze its survivors: this process is the ``fedsim`` command's own."""
    global FREEZE_START_UP
    FREEZE_START_UP = True


@contextmanager
def start_up() -> Iterator[None]:
    """Imports, config and experiment construction without the cyclic garbage collector.

    ``import torch`` leaves about 190,000 tracked objects, and every later full collection
    walks all of them: start-up ran three such passes (0.24-0.37 s of a 2.9 s start to round 1
    of the quickstart, 2 cores, measured with ``gc.callbacks``) though nothing made before the
    first round is garbage. The collector is therefore off until the experiment is built; in the
    ``fedsim`` process the survivors are then moved to the permanent generation
    (``gc.freeze()``), so that no later collection walks them either.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if FREEZE_START_UP:
            gc.freeze()
        if enabled:
            gc.enable()


def _version(value: bool) -> None:
    if value:
        console.print(f"fedsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Federated and decentralized learning simulator."""


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _load(config: Path, overrides: list[str]) -> Any:
    """The validated config; a note on stderr for the keys a ``--set ...kind=`` override dropped."""
    from fedsim.config.loading import load_config

    dropped: list[str] = []
    cfg = load_config(config, overrides, dropped)
    if dropped:
        err_console.print(f"note: dropped {', '.join(dropped)} (not keys of the kind set by --set)", markup=False, highlight=False,
                          soft_wrap=True)
    return cfg


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="Experiment YAML (omit with --resume)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run folder (default: output.dir from the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its checkpoint."),
) -> None:
    """Run an experiment and write its run folder."""
    with start_up():
        from fedsim.checkpoint import load_checkpoint
        from fedsim.errors import FedsimError, Terminated
        from fedsim.experiment import Experiment
        from fedsim.output import RunFolder
        from fedsim.tracking import check_trackers, open_trackers

        if (config is None) == (resume is None) or (resume is not None and (set_ or out is not None)):
            raise FedsimError("fedsim run: give either CONFIG (with optional --set/--out) or --resume RUN_DIR alone")
        # Everything a user can get wrong is checked here, before the run folder exists.
        if resume is not None:
            if not resume.is_dir():
                raise FedsimError(f"--resume {resume}: no such run folder")
            if not (resume / "config.yaml").is_file():
                raise FedsimError(f"--resume {resume}: not a run folder (no config.yaml)")
            cfg = _load(resume / "config.yaml", [])
            every = cfg.output.checkpoint_every
            checkpoint = load_checkpoint(resume, min(every, cfg.algorithm.rounds) if every else None)
        else:
            assert config is not None  # (config is None) == (resume is None) was refused above
            cfg = _load(config, set_)
            checkpoint = None
            RunFolder.target(out if out is not None else cfg.output.dir, "--out" if out is not None else "output.dir")
        check_trackers(cfg.output.trackers)
        experiment = Experiment(cfg)
    try:
        folder = RunFolder(resume) if resume is not None else RunFolder.create(out if out is not None else cfg.output.dir)
        trackers = open_trackers(cfg, folder.path)
    except BaseException:
        experiment.runtime.close()
        raise
    try:
        if quiet:
            result = experiment.run(folder, resume=checkpoint, trackers=trackers)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            with Progress(
                TextColumn("round"), MofNCompleteColumn(), BarColumn(),
                TextColumn("acc {task.fields[acc]}  loss {task.fields[loss]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=err_console, transient=False,
            ) as bar:
                done = checkpoint.rounds_done if checkpoint else 0
                task = bar.add_task("rounds", total=cfg.algorithm.rounds, completed=done, acc="-", loss="-")

                def advance(row: dict[str, Any]) -> None:
                    fields: dict[str, Any] = {"acc": _fmt(row["test_accuracy"]), "loss": _fmt(row["test_loss"])} if row["test_accuracy"] is not None else {}
                    bar.update(task, advance=1, **fields)

                result = experiment.run(folder, advance, resume=checkpoint, trackers=trackers)
    except KeyboardInterrupt as exc:
        err_console.print(f"interrupted; completed rounds are in {folder.path / 'metrics.jsonl'}", markup=False, highlight=False,
                          soft_wrap=True)
        if isinstance(exc, Terminated):  # typer would report any KeyboardInterrupt as 130
            raise typer.Exit(EXIT_TERMINATED) from None
        raise
    finally:
        experiment.runtime.close()
    if result.summary.get("stop_reason"):
        err_console.print(result.summary["stop_reason"], markup=False, highlight=False, soft_wrap=True)
    if not quiet:
        from rich.table import Table

        s = result.summary
        table = Table(title=f"fedsim run: {cfg.algorithm.kind} on {cfg.data.dataset}", show_header=False)
        for key, value in [
            ("final accuracy", _fmt(s["final_accuracy"])),
            ("best accuracy", _fmt(s["best_accuracy"])),
            ("rounds", str(s["rounds"])),
            ("wall time", f"{s['wall_s']:.1f} s"),
            ("bytes up / down", f"{s['bytes_up']:,} / {s['bytes_down']:,}"),
            ("run folder", str(result.run_dir)),
        ]:
            table.add_row(key, value)
        if "privacy" in s:
            p = s["privacy"]
            table.add_row("privacy", f"epsilon {_fmt(p['epsilon'])} at delta {p['delta']:.3g} ({p['accountant']}, {p['unit']}-level, "
                                     f"z {p['noise_multiplier']}); {p['note']}")
        console.print(table)
    divergence = result.summary.get("divergence")
    if divergence:
        err_console.print(
            f"diverged: {divergence['quantity']} is not finite after round {divergence['round']}; {divergence['hint']} "
            f"(rounds so far are in {result.run_dir / 'metrics.jsonl'})",
            markup=False, highlight=False, soft_wrap=True,
        )
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
def validate(
    config: Path = typer.Argument(..., help="Experiment YAML."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
) -> None:
    """Check a config without running it; print the resolved config."""
    from fedsim.config.loading import dump_config

    cfg = _load(config, set_)
    console.print(dump_config(cfg), end="", markup=False, highlight=False)
    err_console.print(f"{config}: valid")


def _mount() -> None:
    """Sub-command groups, each in its own module."""
    from fedsim.cli import data, flower, plot, privacy, report, robustness, study, sweep, topology

    app.add_typer(topology.app, name="topology")
    app.add_typer(data.app, name="data")
    app.add_typer(study.app, name="study")
    app.add_typer(privacy.app, name="privacy")
    app.add_typer(flower.app, name="flower")
    app.add_typer(robustness.app, name="robustness")
    app.command("plot")(plot.plot)
    app.command("sweep")(sweep.sweep)
    app.command("report")(report.report)


_mount()
