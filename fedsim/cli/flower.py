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
    from fedsim.deploy.export import export_app
    from fedsim.experiment import resolve_config

    cfg = resolve_config(config, set_)
    export_app(cfg, out, expected_nodes=supernodes)
    console.print(f"wrote Flower App to {out}")
    console.print(
        "start SuperNodes with --node-config \"partition-id=P num-partitions=N\" and the SuperLink with "
        f"--disable-runtime-dependency-installation, then: flwr run {out} <connection>"
    )


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@app.command()
def deploy(
    config: Path = typer.Argument(..., help="Experiment YAML."),
    supernodes: int = typer.Option(2, "--supernodes", "-n", help="SuperNodes to start (each hosts clients c with c % N == its partition-id)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: output.dir from the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
    tls: bool = typer.Option(False, "--tls", help="Run all connections over TLS with a throwaway CA."),
    superlink: Optional[str] = typer.Option(None, "--superlink", help="host:port of a SuperLink started elsewhere (docker compose); start nothing."),
    port: Optional[int] = typer.Option(None, "--port", help="SuperLink port on 127.0.0.1 (default: a free one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-round lines or table."),
) -> None:
    """Run CONFIG on a real SuperLink and SuperNodes on 127.0.0.1 and write the run folder."""
    from fedsim.deploy.deploy import deploy as run_deployment

    def show(row: dict[str, Any]) -> None:
        acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        dropped = f", {row['clients_dropped']} dropped" if row.get("clients_dropped") else ""
        eps = f", epsilon {row['epsilon']:.4g}" if row.get("epsilon") is not None else ""
        err_console.print(
            f"round {row['round']}: accuracy {acc}, {row['clients']} clients answered{dropped} "
            f"from {row.get('supernodes', '?')} SuperNodes{eps}, {row['wall_s']:.1f} s"
        )

    # A plain SIGTERM would end this process without cleanup and orphan the Flower processes.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = run_deployment(
            config, set_, supernodes=supernodes, out=out, tls=tls, superlink=superlink, port=port,
            progress=None if quiet else show,
        )
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
