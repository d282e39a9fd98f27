"""``fedsim data show``: what the configured data set and partition give each client."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["app", "plot_label_heatmap"]

app = typer.Typer(help="Data sets and partitions: client counts, sizes and label histograms.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Data sets and partitions: client counts, sizes and label histograms."""


def plot_label_heatmap(summary: dict[str, Any], path: Path) -> None:
    """Heat map of every client's label histogram (rows: clients, columns: classes; colour: share of the client's samples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    hist = np.asarray(summary["label_histograms"], dtype=float)
    share = hist / np.maximum(hist.sum(1, keepdims=True), 1)
    height = min(12.0, 2.0 + 0.04 * len(hist))
    fig, ax = plt.subplots(figsize=(min(14.0, 3.0 + 0.12 * hist.shape[1]), height))
    im = ax.imshow(share, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("class")
    ax.set_ylabel("client")
    ax.set_title(f"{summary['dataset']}: {summary['num_clients']} clients, sizes {summary['size_min']}..{summary['size_max']}")
    fig.colorbar(im, ax=ax, label="share of the client's samples")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


@app.command()
def show(
    config: Path = typer.Argument(..., help="Experiment YAML (its data: section is used)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a heat map of every client's label histogram (PNG)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole summary as JSON instead of tables."),
    rows: int = typer.Option(10, "--rows", min=0, help="Clients listed in the table."),
) -> None:
    """Number of clients, size distribution and per-client label histograms of a config's partition."""
    from fedsim.data.summary import partition_summary
    from fedsim.experiment import resolve_config

    cfg = resolve_config(config, set_)
    data = cfg.data.build(cfg.seed)
    summary = partition_summary(data)
    if plot is not None:
        plot_label_heatmap(summary, plot)
    if as_json:
        from fedsim.output import strict_dumps  # non-finite floats as null: strict JSON
        typer.echo(strict_dumps(summary, indent=1))  # plain: rich would wrap long lines
        return
    head = Table(title=f"{cfg.data.dataset}, partition {cfg.data.partition.kind}", show_header=False)
    for key, value in [
        ("clients", str(summary["num_clients"])),
        ("samples (train / test)", f"{summary['train_samples']:,} / {summary['test_samples']:,}"),
        ("input, classes", f"{'x'.join(map(str, summary['input_shape']))}, {summary['num_classes']}"),
        ("size min / median / max", f"{summary['size_min']} / {summary['size_median']:g} / {summary['size_max']}"),
        ("classes per client min / median / max",
         f"{summary['classes_per_client_min']} / {summary['classes_per_client_median']:g} / {summary['classes_per_client_max']}"),
        ("label skew (mean TV from global)", f"{summary['label_skew_tv_mean']:.3f}"),
    ]:
        head.add_row(key, value)
    console.print(head)
    if rows:
        classes = summary["num_classes"]
        shown = min(classes, 20)
        table = Table(title=f"first {min(rows, summary['num_clients'])} clients: samples per class" + ("" if shown == classes else f" (first {shown} classes)"))
        table.add_column("client")
        table.add_column("size", justify="right")
        for c in range(shown):
            table.add_column(str(c), justify="right")
        names = summary["client_names"]
        for k in range(min(rows, summary["num_clients"])):
            hist = summary["label_histograms"][k]
            table.add_row(names[k] if names else str(k), str(summary["sizes"][k]), *(str(v) if v else "." for v in hist[:shown]))
        console.print(table)
    if plot is not None:
        err_console.print(f"heat map: {plot}")
