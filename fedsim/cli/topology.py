"""``fedsim topology``: inspect a topology spec (graph size, degrees, spectral gap, validity)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fedsim.errors import FedsimError

if TYPE_CHECKING:
    from fedsim.topology.topology import Topology

# fedsim.topology (networkx, scipy, matplotlib for plots) is imported inside the functions:
# mounting this sub-app must not cost `fedsim run` those imports at start-up.

__all__ = ["app", "describe"]

app = typer.Typer(help="Decentralized topologies: graphs, mixing matrices and spectral gaps.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Decentralized topologies: graphs, mixing matrices and spectral gaps."""


def describe(topology: Topology) -> dict[str, Any]:
    """Summary of a topology: sizes, degrees, $|\\lambda_2|$, spectral gap and validation outcome.

    For a time-varying topology ``lambda2``/``spectral_gap`` are those of the product of the
    period's matrices and ``round_spectral_gaps`` lists each round's.
    """
    from fedsim.topology.validate import validate_schedule

    try:
        validate_schedule(topology.matrices, topology.graphs)
        problem = None
    except FedsimError as err:
        problem = str(err)
    low, high = topology.degree_range()
    lambda2 = topology.lambda2()
    return {
        "family": topology.family,
        "mixing": topology.mixing,
        "nodes": topology.nodes,
        "edges": topology.edges(),
        "directed": topology.directed,
        "degree_min": low,
        "degree_max": high,
        "period": topology.period,
        "lambda2": lambda2,
        "spectral_gap": min(1.0, max(0.0, 1.0 - lambda2)),
        "round_spectral_gaps": topology.round_gaps() if topology.period > 1 else None,
        "valid": problem is None,
        "problem": problem,
    }


def _fail(err: FedsimError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(2)


@app.command()
def show(
    spec: str = typer.Argument(..., help="Family name (ring, torus, ...) or path to a YAML topology spec."),
    nodes: int = typer.Option(..., "--nodes", "-n", help="Number of nodes."),
    mixing: str | None = typer.Option(None, help="Mixing kind overriding the spec's (metropolis_hastings, max_degree, uniform, lazy, parametric, column_stochastic)."),
    gap: float | None = typer.Option(None, help="Spectral gap for --mixing parametric."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(None, help="Save a drawing coloured by degree to this PNG."),
) -> None:
    """Print nodes, edges, degree range, |lambda_2|, spectral gap and whether W passed validation."""
    from fedsim.topology.plot import plot_graph
    from fedsim.topology.specs import build_topology, load_spec

    try:
        topology = build_topology(load_spec(spec), nodes, mixing, gap, validate=False)
        info = describe(topology)
        if plot is not None:
            plot_graph(topology.graphs[0], plot, title=f"{topology.family}, n={nodes}, gap={info['spectral_gap']:.4g}")
    except FedsimError as err:
        raise _fail(err) from None
    if as_json:
        from fedsim.output import strict_dumps  # non-finite floats as null: strict JSON
        typer.echo(strict_dumps(info))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"topology {spec}", show_header=False)
    for key, value in info.items():
        if value is not None:
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)
