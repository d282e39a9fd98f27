"""The ``evaluation:`` and ``output:`` sections: how often the model is tested, where the run folder
goes, plots and checkpoints.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from fedsim.config.base import Section

__all__ = ["EvaluationConfig", "OutputConfig"]


class EvaluationConfig(Section):
    every: PositiveInt = Field(1, description="Evaluate on the test set every this many rounds (and after the last)")
    client_holdout: float = Field(
        0.0, ge=0, lt=1, description="Hold out this fraction of each client's data and report mean, 10th percentile and worst client accuracy"
    )


class OutputConfig(Section):
    dir: str = Field("runs/run", description="Run folder; a numeric suffix is added if it already holds a run")
    plot: bool = True
    checkpoint_every: PositiveInt | None = Field(None, description="Save a resumable checkpoint every this many rounds (and after the last)")
    trackers: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="Experiment trackers fed every round (extra: pip install -e '.[tracking]')")
