"""The identity operator: send every coordinate as float32 (the uncompressed baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import FLOAT_BITS, Compressed, Compressor, Guarantee, State, check_vector

__all__ = ["Identity"]


@dataclass(frozen=True)
class Identity(Compressor):
    """``C(x) = x``: unbiased with omega = 0, 32 d bits."""

    name = "identity"

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        return Compressed(x, FLOAT_BITS * d, dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        return Guarantee(unbiased=True, error=0.0)
