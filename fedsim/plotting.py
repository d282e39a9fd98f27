"""Plots of run metrics with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_curves"]


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> None:
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
