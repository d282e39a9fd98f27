"""``fedsim flower export`` and ``fedsim flower deploy``: the same federation on real Flower processes."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Run fedsim federations on a real Flower SuperLink and SuperNodes (flwr 1.42).",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


@app.command()
def export(
    config: Path = typer.Argument(..., help="Experiment YAML."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the Flower App."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
    supernodes: int = typer.Option(1, "--supernodes", help="SuperNodes the ServerApp waits for before round 1."),
) -> None:
    """Write a Flower App (pyproject, ServerApp, ClientApp) that runs CONFIG with fedsim's own code."""
    from fedsim.cli.app import _load
    from fedsim.deploy.export import export_app
    from fedsim.output import check_run_dir

    cfg = _load(config, set_)
    check_run_dir(out, "--out")
    export_app(cfg, out, expected_nodes=supernodes)
    console.print(f"wrote Flower App to {out}")
    console.print(
        "start SuperNodes with --node-config \"partition-id=P num-partitions=N\" and the SuperLink with "
        f"--disable-runtime-dependency-installation, then: flwr run {out} <connection>"
    )


def _preflight(cfg: Any, supernodes: int, out: Optional[str], tls: bool, superlink: Optional[str], port: Optional[int]) -> None:
    """Every precondition of a deployment, checked before the run folder or any process exists."""
    import importlib.util

    from fedsim.deploy import cluster
    from fedsim.deploy.ports import require_free_port
    from fedsim.errors import FedsimError
    from fedsim.output import RunFolder

    if supernodes < 1:
        raise FedsimError(f"--supernodes must be at least 1, got {supernodes}")
    if tls and superlink:
        raise FedsimError("--tls makes its own throwaway certificates; it cannot be combined with --superlink")
    if cfg.flower.min_nodes > supernodes:
        raise FedsimError(f"flower.min_nodes={cfg.flower.min_nodes} exceeds --supernodes={supernodes}")
    if supernodes > cfg.data.num_clients:
        raise FedsimError(f"--supernodes={supernodes} exceeds data.num_clients={cfg.data.num_clients}: some SuperNodes would host no client")
    RunFolder.target(out if out is not None else cfg.output.dir, "--out" if out is not None else "output.dir")
    if importlib.util.find_spec("flwr") is None:
        raise FedsimError("flwr is not installed: fedsim flower needs it (pip install 'fedsim[flower]')")
    cluster.flower_bin_dir()  # the flower-superlink script, next to this interpreter or on PATH
    if port is not None and superlink is None:
        require_free_port(port, what="--port")


@app.command()
def deploy(
    config: Path = typer.Argument(..., help="Experiment YAML."),
    supernodes: int = typer.Option(2, "--supernodes", "-n", help="SuperNodes to start (each hosts clients c with c % N == its partition-id)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run folder (default: output.dir from the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
    tls: bool = typer.Option(False, "--tls", help="Run all connections over TLS with a throwaway CA."),
    superlink: Optional[str] = typer.Option(None, "--superlink", help="host:port of a SuperLink started elsewhere (docker compose); start nothing."),
    port: Optional[int] = typer.Option(None, "--port", help="SuperLink port on 127.0.0.1 (default: a free one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-round lines or table."),
) -> None:
    """Run CONFIG on a real SuperLink and SuperNodes on 127.0.0.1 and write the run folder."""
    from fedsim.cli.app import _load
    from fedsim.deploy.deploy import deploy as run_deployment
    from fedsim.cli.app import EXIT_TERMINATED
    from fedsim.errors import Terminated, raise_terminated

    cfg = _load(config, set_)
    _preflight(cfg, supernodes, out, tls, superlink, port)

    def show(row: dict[str, Any]) -> None:
        acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        dropped = f", {row['clients_dropped']} dropped" if row.get("clients_dropped") else ""
        eps = f", epsilon {row['epsilon']:.4g}" if row.get("epsilon") is not None else ""
        err_console.print(
            f"round {row['round']}: accuracy {acc}, {row['clients']} clients answered{dropped} "
            f"from {row.get('supernodes', '?')} SuperNodes{eps}, {row['wall_s']:.1f} s"
        )

    # A plain SIGTERM would end this process without cleanup and orphan the Flower processes.
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        result = run_deployment(
            cfg, (), supernodes=supernodes, out=out, tls=tls, superlink=superlink, port=port,
            progress=None if quiet else show,
        )
    except Terminated:
        raise typer.Exit(EXIT_TERMINATED) from None  # typer would report any KeyboardInterrupt as 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if quiet:
        return
    s = result.summary
    table = Table(title=f"fedsim flower deploy: {supernodes} SuperNodes", show_header=False)
    for key, value in [
        ("final accuracy", "-" if s["final_accuracy"] is None else f"{s['final_accuracy']:.4f}"),
        ("rounds", str(s["rounds"])),
        ("dropped SuperNodes", str(len(s.get("dropped_supernodes", {})))),
        ("deploy wall time", f"{result.wall_s:.1f} s"),
        ("run folder", str(result.run_dir)),
    ]:
        table.add_row(key, value)
    console.print(table)
