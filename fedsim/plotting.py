"""Plots of run metrics with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["comparison_series", "image_formats", "plain_text", "plot_comparison", "plot_curves", "run_labels"]


def image_formats() -> list[str]:
    """The file extensions matplotlib can save to (png, pdf, svg, ...)."""
    return sorted(FigureCanvasBase.get_supported_filetypes())


@functools.lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    from matplotlib import font_manager, ft2font

    return frozenset(ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap())


def plain_text(text: str) -> str:
    """``text`` as matplotlib draws it literally: ``$`` escaped (no mathtext), characters the font
    lacks replaced by ``?`` (instead of a "Glyph missing" warning and an empty box)."""
    glyphs = _glyphs()
    return "".join(c if ord(c) in glyphs or c in " \n" else "?" for c in text).replace("$", r"\$")


def _integer_rounds(ax: plt.Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # there is no round 2.5


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path | IO[bytes], title: str = "") -> None:
    """Test accuracy and loss (test and train) against round, side by side."""
    evaluated = [r for r in rows if r.get("test_accuracy") is not None]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_acc.plot([r["round"] for r in evaluated], [r["test_accuracy"] for r in evaluated], marker=".")
    ax_acc.set(xlabel="round", ylabel="test accuracy", title="accuracy")
    ax_loss.plot([r["round"] for r in evaluated], [r["test_loss"] for r in evaluated], marker=".", label="test")
    ax_loss.plot([r["round"] for r in rows], [r["train_loss"] for r in rows], label="train (clients)")
    ax_loss.set(xlabel="round", ylabel="cross-entropy", title="loss")
    ax_loss.legend()
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        _integer_rounds(ax)
    if title:
        fig.suptitle(plain_text(title))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


AXIS_LABELS = {
    "round": "communication round",
    "bytes_up": "uplink traffic (MB, cumulative)",
    "wall_s": "wall time (s)",
    "sim_time_s": "simulated time (s)",
    "test_accuracy": "test accuracy",
    "test_loss": "test loss (cross-entropy)",
}


def comparison_series(rows: Sequence[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    """The ``(x, y)`` points of one run at its evaluated rounds; ``bytes_up`` is cumulated and in MB."""
    xs, ys, sent = [], [], 0
    for row in rows:
        sent += row.get("bytes_up", 0)
        if row.get(y) is None:
            continue
        xs.append(sent / 1e6 if x == "bytes_up" else row[x])
        ys.append(row[y])
    return xs, ys


def run_labels(configs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Legend entries: the algorithm kind plus the config keys (outside ``output``) that tell the runs apart."""

    def flat(node: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(node, dict):
            return {k: v for key, sub in node.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
        return {prefix[:-1]: node}

    flats = [flat(c) for c in configs]
    keys = sorted({k for f in flats for k in f if not k.startswith("output.") and k != "algorithm.kind"})

    def shown(key: str) -> bool:
        having = [f for f in flats if key in f]
        kinds = {f.get("algorithm.kind") for f in having}
        # A value that varies, or a key only one algorithm has (FedProx's mu next to FedAvg).
        return len({repr(f[key]) for f in having}) > 1 or (len(kinds) == 1 and len(having) < len(flats))

    differing = [k for k in keys if shown(k)]  # every one of them: a label that drops one can repeat another's
    labels = []
    for f in flats:
        parts = [f"{k.removeprefix('algorithm.')}={f.get(k)}" for k in differing if k in f]
        labels.append(str(f.get("algorithm.kind", "run")) + (f" ({', '.join(parts)})" if parts else ""))
    if len(set(labels)) < len(labels):
        labels = [f"{label} [{name}]" for label, name in zip(labels, names)]
    return labels


def plot_comparison(
    runs: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: str | Path, *, x: str = "round", y: str = "test_accuracy", title: str = ""
) -> None:
    """Overlay runs' ``y`` against ``x``, one labelled line per run."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, rows in runs:
        xs, ys = comparison_series(rows, x, y)
        ax.plot(xs, ys, marker="." if len(xs) < 40 else None, label=plain_text(label))
    ax.set(xlabel=AXIS_LABELS[x], ylabel=AXIS_LABELS[y])
    if x == "round":
        _integer_rounds(ax)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
