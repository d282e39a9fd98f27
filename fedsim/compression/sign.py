"""Scaled sign compression: ``C(x) = ||x||_1 / d * sign(x)`` (Karimireddy et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import FLOAT_BITS, Compressed, Compressor, Guarantee, State, check_vector

__all__ = ["ScaledSign"]


@dataclass(frozen=True)
class ScaledSign(Compressor):
    """Scaled sign (Karimireddy, Rebjock, Stich and Jaggi, "Error Feedback Fixes SignSGD and other
    Gradient Compression Schemes", ICML 2019, Algorithm 1 / Lemma 8).

    ``C(x) = (||x||_1 / d) sign(x)``. One bit per coordinate cannot say "zero", so ``sign(0) = +1``;
    the identity ``||C(x) - x||^2 = ||x||^2 - ||x||_1^2 / d`` holds either way, so it is a
    delta-contraction with ``delta(x) = ||x||_1^2 / (d ||x||_2^2) >= 1/d``, i.e. delta = 1/d for every x. The
    unscaled 1-bit sign of signSGD (Bernstein et al., ICML 2018), ``sign([1.7, -2.6, -3.5]) = [1, -1, -1]``,
    is the direction this operator sends. Bits: one per coordinate plus the float32 scale.
    """

    name = "sign"

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        scale = torch.linalg.vector_norm(x, ord=1) / d
        return Compressed(torch.where(x >= 0, scale, -scale), FLOAT_BITS + d, dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        return Guarantee(unbiased=d == 1, error=1.0 - 1.0 / d)
