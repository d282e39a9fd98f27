"""``fedsim plot RUN_DIR... -o FILE.png``: overlay the curves of several runs, labelled from their configs."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from fedsim.errors import FedsimError

__all__ = ["plot"]


class XAxis(str, Enum):
    round = "round"
    bytes_up = "bytes_up"
    wall_s = "wall_s"
    sim_time_s = "sim_time_s"


class YAxis(str, Enum):
    test_accuracy = "test_accuracy"
    test_loss = "test_loss"


def _load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    metrics, config = run_dir / "metrics.jsonl", run_dir / "config.yaml"
    if not run_dir.is_dir():
        raise FedsimError(f"{run_dir}: no such run folder")
    if not metrics.is_file():
        raise FedsimError(f"{run_dir}: not a run folder (no metrics.jsonl)")
    try:
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise FedsimError(f"{metrics}:{exc.lineno}: not valid JSON") from None
    from fedsim.config.loading import parse_yaml  # not at module level: it imports torch, which `fedsim --help` need not

    cfg = parse_yaml(config.read_text(), str(config)) if config.is_file() else {}
    return cfg if isinstance(cfg, dict) else {}, rows


def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders written by `fedsim run`."),
    out: Path = typer.Option(..., "--out", "-o", help="Image file to write (.png, .pdf, .svg)."),
    x: XAxis = typer.Option(XAxis.round, "--x", help="Horizontal axis."),
    y: YAxis = typer.Option(YAxis.test_accuracy, "--y", help="Vertical axis."),
    title: Optional[str] = typer.Option(None, "--title", help="Figure title."),
) -> None:
    """Overlay several runs' test accuracy or loss against rounds, uplink bytes, wall or simulated time."""
    from fedsim.output import check_output_file
    from fedsim.plotting import image_formats, plot_comparison, run_labels

    check_output_file(out, "-o")
    formats = image_formats()
    if out.suffix.lower().lstrip(".") not in formats:
        raise FedsimError(f"-o {out}: unknown image type {out.suffix or '(no extension)'} (allowed: {', '.join('.' + f for f in formats)})")
    loaded = [_load_run(d) for d in run_dirs]
    if not any(r.get(y.value) is not None for _, rows in loaded for r in rows):
        raise FedsimError(f"--y {y.value}: no evaluated rounds in {', '.join(map(str, run_dirs))}")
    if x is XAxis.sim_time_s:
        untimed = [str(d) for d, (_, rows) in zip(run_dirs, loaded) if any(r.get("sim_time_s") is None for r in rows)]
        if untimed:
            raise FedsimError(f"--x sim_time_s: {', '.join(untimed)} ran without a systems: section (no simulated time)")
    labels = run_labels([cfg for cfg, _ in loaded], [d.name for d in run_dirs])
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_comparison([(label, rows) for label, (_, rows) in zip(labels, loaded)], out, x=x.value, y=y.value, title=title or "")
    typer.echo(f"wrote {out}")
