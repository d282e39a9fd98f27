"""``fedsim study``: sweeps of whole experiments (``fedsim study topology``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from fedsim.errors import FedsimError

__all__ = ["app"]

app = typer.Typer(help="Sweeps of whole experiments, with a table and plots.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Sweeps of whole experiments, with a table and plots."""


def _csv_list(value: str, what: str, cast: type) -> list[Any]:
    try:
        items = [cast(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise FedsimError(f"--{what}: expected a comma-separated list, got {value!r}") from None
    if not items:
        raise FedsimError(f"--{what}: empty list")
    return items


@app.command()
def topology(
    config: Path = typer.Argument(..., help="Decentralized experiment YAML (algorithm.kind gossip, dpsgd or choco)."),
    topologies: str = typer.Option("ring,torus,exponential,complete", help="Comma-separated families or YAML spec paths."),
    nodes: str = typer.Option("16,64", help="Comma-separated node counts."),
    target: float = typer.Option(0.85, help="Mean node test accuracy that counts as reached."),
    out: Path = typer.Option(Path("runs/study-topology"), "--out", "-o", help="Study folder."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: section.key=value (repeatable)."),
    backend: str = typer.Option("inline", "--backend", help="inline (one after the other here), pool, tune or auto (see fedsim sweep)."),
    parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Runs at once (pool, tune)."),
    resume: bool = typer.Option(False, "--resume", help="Skip the runs an earlier study in --out completed."),
    byzantine_fraction: Optional[str] = typer.Option(None, "--byzantine-fraction", help="Comma-separated Byzantine node fractions "
                                                     "(dpsgd; attack from robustness.byzantine, e.g. --set robustness.byzantine.attack=alie)."),
    gossip_rules: Optional[str] = typer.Option(None, "--gossip-rules", help="Comma-separated mixing rules: plain, clipped, trimmed_mean "
                                               "(options from algorithm.robust_gossip, e.g. --set algorithm.robust_gossip.tau=0.1)."),
) -> None:
    """Run CONFIG for every topology and node count (and Byzantine fraction and gossip rule); write study.csv, study.json and two plots."""
    from rich.console import Console
    from rich.table import Table

    from fedsim.studies.topology import run_topology_study

    console = Console(stderr=True)
    rows = run_topology_study(
        config, _csv_list(topologies, "topologies", str), _csv_list(nodes, "nodes", int), out=out, target=target,
        overrides=set_, backend=backend, parallel=parallel, resume=resume,
        byzantine_fractions=_csv_list(byzantine_fraction, "byzantine-fraction", float) if byzantine_fraction is not None else (),
        gossip_rules=_csv_list(gossip_rules, "gossip-rules", str) if gossip_rules is not None else (),
        progress=lambda r: console.print(f"{r['topology']} n={r['nodes']} f={r['byzantine_fraction']:g} {r['gossip_rule']}: "
                                         f"gap {r['spectral_gap']:.4g}, accuracy {r['final_accuracy']:.4f}"),
    )
    byzantine = byzantine_fraction is not None or gossip_rules is not None
    table = Table(title=f"topology study ({out})" + ("; consensus and accuracies of the honest nodes" if byzantine else ""))
    for column in ("topology", "nodes", *(("Byzantine f", "gossip rule") if byzantine else ()), "spectral gap",
                   "final consensus dist.", "accuracy (avg model)", "mean node acc.", *(("worst node acc.",) if byzantine else ()),
                   f"rounds to {target:g}"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["topology"], str(r["nodes"]), *((f"{r['byzantine_fraction']:g}", r["gossip_rule"]) if byzantine else ()),
                      f"{r['spectral_gap']:.4g}", f"{r['final_consensus_distance']:.3g}",
                      f"{r['final_accuracy']:.4f}", f"{r['final_node_accuracy_mean']:.4f}",
                      *((f"{r['final_node_accuracy_min']:.4f}",) if byzantine else ()),
                      str(r["rounds_to_target"] if r["rounds_to_target"] is not None else "-"))
    Console().print(table)


@app.command()
def robustness(
    config: Path = typer.Argument(..., help="Server-based experiment YAML (fedavg family)."),
    aggregators: str = typer.Option("mean,median,krum,centered_clipping", help="Comma-separated algorithm.aggregator kinds."),
    attacks: str = typer.Option("none,sign_flip,alie", help="Comma-separated Byzantine attacks ('none': no attacker)."),
    fractions: str = typer.Option("0,0.1,0.2,0.3", help="Comma-separated Byzantine fractions in [0, 1)."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds (default: the config's seed)."),
    assumed_fraction: Optional[float] = typer.Option(None, help="Fraction every rule tolerates (default: the cell's true fraction)."),
    backend: str = typer.Option("inline", help="Sweep backend: inline, pool, tune or auto."),
    parallel: Optional[int] = typer.Option(None, help="Runs at once (pool / tune)."),
    out: Path = typer.Option(Path("runs/study-robustness"), "--out", "-o", help="Study folder."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: section.key=value (repeatable)."),
) -> None:
    """Run CONFIG for every aggregator, attack and fraction; write study.csv, study.md and accuracy_vs_fraction.png."""
    from rich.console import Console

    from fedsim.studies.robustness import run_robustness_study

    console = Console(stderr=True)
    rows = run_robustness_study(
        config, _csv_list(aggregators, "aggregators", str), _csv_list(attacks, "attacks", str), _csv_list(fractions, "fractions", float),
        out=out, seeds=_csv_list(seeds, "seeds", int) if seeds else None, assumed_fraction=assumed_fraction, overrides=set_,
        backend=backend, parallel=parallel,
        progress=lambda r: console.print(f"{r['aggregator']} {r['attack']} f={r['fraction']:g} seed {r['seed']}: {r['status']}, "
                                         f"accuracy {r['final_accuracy'] if r['final_accuracy'] is not None else '-'}"),
    )
    typer.echo((out / "study.md").read_text(), nl=False)
    typer.echo(f"{len(rows)} runs; study.csv, study.md and accuracy_vs_fraction.png in {out}")
