"""The ``model:`` section: which architecture of :mod:`fedsim.models.zoo` and its widths.

A new architecture is a new ``kind`` literal here (and its builder in the zoo).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from fedsim.config.base import Section

__all__ = ["ModelConfig"]


class ModelConfig(Section):
    kind: Literal["logistic", "mlp", "cnn"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [200], description="MLP hidden widths")
    channels: tuple[PositiveInt, PositiveInt] = Field((6, 16), description="CNN conv channels")
