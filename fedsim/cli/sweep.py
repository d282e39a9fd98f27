"""``fedsim sweep CONFIG --grid key=v1,v2 ... --seeds 0,1,2``: a grid over seeds, mean +- std per grid point."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from fedsim.errors import FedsimError

__all__ = ["sweep", "parse_values", "parse_assignment"]


def parse_values(text: str, what: str) -> list[Any]:
    """``0.01,0.05,[1,2]`` -> ``[0.01, 0.05, [1, 2]]``: top-level commas split, each item parsed as YAML."""
    import yaml

    items, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    if depth != 0 or any(not item.strip() for item in items):
        raise FedsimError(f"{what}: expected a comma-separated list of values, got {text!r}")
    values = []
    for item in items:
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError:
            values.append(item.strip())
    return values


def parse_assignment(item: str, option: str) -> tuple[str, list[Any]]:
    key, sep, values = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise FedsimError(f"{option} {item}: expected section.key=v1,v2,..., e.g. algorithm.lr=0.01,0.1")
    return key, parse_values(values, f"{option} {key}")


def sweep(
    config: Path = typer.Argument(..., help="Experiment YAML (its `sweep:` section, if any, is the starting grid)."),
    grid: list[str] = typer.Option([], "--grid", help="key=v1,v2,... : one grid axis (repeatable; replaces the YAML's)."),
    zip_: list[str] = typer.Option([], "--zip", help="key=a,b;key2=c,d : keys that vary together (repeatable)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds of every grid point (default: the config's)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Sweep folder (default: runs/sweep-<config name>)."),
    parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Trials at once (Tune default: fill the CPUs)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto or ray://host:10001 (default: local Ray)."),
    resume: bool = typer.Option(False, "--resume", help="Skip completed trials of an earlier run of this sweep."),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", min=0, help="Retries of a failed trial."),
    backend: str = typer.Option("auto", "--backend", help="auto (Ray Tune if installed, else pool), tune, pool or inline."),
    cpus: Optional[float] = typer.Option(None, "--cpus", help="CPUs per trial (Tune resources; torch threads everywhere)."),
    gpus: Optional[float] = typer.Option(None, "--gpus", help="GPU fraction per trial (Tune)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key of every trial: section.key=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-trial lines or table."),
) -> None:
    """Run CONFIG for every grid point and seed; write sweep.json, sweep.csv, table.md and curves.png."""
    from pydantic import ValidationError
    from rich.console import Console
    from rich.table import Table

    from fedsim.config.loading import apply_overrides
    from fedsim.config.sweep import SweepConfig
    from fedsim.studies.sweep import _fmt, _show, load_base, run_sweep, short_keys, table_columns

    base, source = load_base(config)
    base = apply_overrides(base, set_)
    raw = dict(base.get("sweep") or {})
    if grid:
        raw["grid"] = dict(parse_assignment(g, "--grid") for g in grid)
    if zip_:
        raw["zip"] = [dict(parse_assignment(part, "--zip") for part in z.split(";") if part.strip()) for z in zip_]
    if seeds is not None:
        raw["seeds"] = parse_values(seeds, "--seeds")
    if max_failures is not None:
        raw["max_failures"] = max_failures
    resources = dict(raw.get("resources") or {})
    if cpus is not None:
        resources["cpus"] = cpus
    if gpus is not None:
        resources["gpus"] = gpus
    raw["resources"] = resources
    try:
        spec = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FedsimError(f"sweep{'.' + where if where else ''}: {first['msg']}" if first["type"] != "fedsim" else first["msg"]) from None
    base["sweep"] = None
    out = out if out is not None else Path("runs") / f"sweep-{config.stem}"

    console = Console(stderr=True, soft_wrap=True)  # one line per message, whatever the terminal width

    def progress(o: Any) -> None:
        if quiet:
            return
        m = o.metrics()
        if o.ok:
            what = f"{o.summary['status']}, accuracy " + (f"{m['final_accuracy']:.4f}" if m["final_accuracy"] is not None else "-")
        else:
            what = f"{'DIVERGED' if o.diverged else 'FAILED'}: {o.error}"
        console.print(f"{o.trial.name}: {what}" + (" (done before; skipped)" if o.status == "skipped" else ""), markup=False, highlight=False)

    result = run_sweep(base, spec, out=out, backend=backend, parallel=parallel, address=address, resume=resume,
                       progress=progress, source=source)
    if not quiet:
        table = Table(title=f"fedsim sweep: {len(result.outcomes)} trials, {result.backend}, {result.wall_s:.1f} s ({out})")
        metrics = table_columns(result.table)
        for column in [*short_keys(result.keys), "seeds", *metrics]:
            table.add_column(column)
        for r in result.table:
            table.add_row(*(_show(r["point"][k]) for k in result.keys), f"{len(r['seeds'])}/{r['trials']}",
                          *(_fmt(r[m], m) for m in metrics))
        Console().print(table)
    if result.diverged:
        console.print(f"{len(result.diverged)} of {len(result.outcomes)} trials diverged (left out of the table): "
                  + ", ".join(o.trial.name for o in result.diverged), markup=False, highlight=False)
    if result.failed:
        names = ", ".join(o.trial.name for o in result.failed)
        console.print(f"{len(result.failed)} of {len(result.outcomes)} trials failed: {names} (see error.txt in each folder, "
                  "sweep.csv); rerun them with --resume", markup=False, highlight=False)
        raise typer.Exit(1)
