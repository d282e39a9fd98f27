"""``fedsim report RUN_DIR|SWEEP_DIR -o report.html``: one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["report"]


def report(
    folder: Path = typer.Argument(..., help="A run folder (summary.json) or a sweep folder (sweep.json)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
) -> None:
    """Write one HTML page (plots embedded, nothing fetched) with the config, summary, curves and tables."""
    from fedsim.studies.report import write_report

    typer.echo(f"wrote {write_report(folder, out)}")
