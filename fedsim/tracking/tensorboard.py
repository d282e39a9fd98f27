"""TensorBoard tracker: per-round scalars and the resolved config as text, in the run folder.

Written with torch's ``SummaryWriter``, which writes the ``tensorboard`` package's event files;
``tensorboard --logdir RUN_DIR`` (or a sweep folder: one run per trial) shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedsim.config.loading import dump_config
from fedsim.config.schema import ExperimentConfig

__all__ = ["TensorBoardTracker"]


class TensorBoardTracker:
    """Scalars ``<metric>`` at step ``round``; the config as text under ``config``; events in ``RUN_DIR/tensorboard``."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path) -> None:
        import tensorboard  # noqa: F401  - the writer below needs it; fail here with its name
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.logdir))
        # Markdown code block: TensorBoard renders text summaries as markdown.
        self.writer.add_text("config", "```\n" + dump_config(cfg) + "```", 0)

    def log_round(self, row: dict[str, Any]) -> None:
        from fedsim.tracking import scalars

        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, row["round"])
        self.writer.flush()  # a live `tensorboard --logdir` sees each round

    def finish(self, summary: dict[str, Any]) -> None:
        from fedsim.tracking import scalars

        self.writer.add_text("summary", "\n".join(f"- {k}: {v}" for k, v in scalars(summary).items()), summary.get("rounds", 0))
        self.writer.close()
