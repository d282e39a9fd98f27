"""QSGD: unbiased stochastic quantization to s levels of the l2-normalized magnitudes (Alistarh et al.,
"QSGD: Communication-Efficient SGD via Gradient Quantization and Encoding", NeurIPS 2017)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import FLOAT_BITS, Compressed, Compressor, Guarantee, State, check_vector
from fedsim.errors import FedsimError

__all__ = ["QSGD", "qsgd_bits", "qsgd_variance"]


def qsgd_bits(d: int, levels: int) -> int:
    """Fixed-length QSGD code: one float32 norm plus, per coordinate, a sign bit and a level in 0..s."""
    return FLOAT_BITS + d * (1 + math.ceil(math.log2(levels + 1)))


def qsgd_variance(x: Tensor, levels: int) -> float:
    """The exact ``E||Q_s(x) - x||^2 = ||x||^2 / s^2 * sum_i p_i (1 - p_i)``, ``p_i = s u_i - floor(s u_i)``."""
    norm = torch.linalg.vector_norm(x.double())
    if norm == 0:
        return 0.0
    scaled = levels * x.double().abs() / norm
    frac = scaled - scaled.floor()
    return float(norm**2 / levels**2 * (frac * (1 - frac)).sum())


@dataclass(frozen=True)
class QSGD(Compressor):
    """QSGD quantizer (Alistarh, Grubic, Li, Tomioka and Vojnovic, "QSGD: Communication-Efficient
    SGD via Gradient Quantization and Encoding", NeurIPS 2017, eq. (1) and Lemma 3.1).

    With ``u_i = |x_i| / ||x||_2`` and ``l = floor(s u_i)``, the level is ``(l + 1)/s`` with
    probability ``s u_i - l`` and ``l/s`` otherwise; ``C(x) = ||x||_2 sign(x) * level``. It is
    unbiased with ``E||C(x) - x||^2 <= min(d/s^2, sqrt(d)/s) ||x||^2`` and ``C(0) = 0``.
    Bits: a float32 norm plus ``1 + ceil(log2(s + 1))`` bits per coordinate (fixed-length code,
    not the paper's Elias coding, so the count is an upper bound on what QSGD needs).

    Parameters
    ----------
    levels : int
        Number of quantization levels s >= 1 (q-bit quantization is s = 2^q - 1).
    """

    levels: int
    name = "qsgd"

    def __post_init__(self) -> None:
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 1:
            raise FedsimError(f"compressor 'qsgd': levels s={self.levels!r} is invalid; allowed: an integer s >= 1")

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        bits = qsgd_bits(d, self.levels)
        norm = torch.linalg.vector_norm(x)
        if norm == 0:
            return Compressed(torch.zeros_like(x), bits, dict(state or {}))
        scaled = (self.levels / norm) * x.abs()
        lower = scaled.floor()
        up = torch.rand(d, generator=generator, device=x.device, dtype=x.dtype) < (scaled - lower)
        level = (lower + up).clamp_(max=self.levels)
        return Compressed(torch.sign(x) * level * (norm / self.levels), bits, dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        s = self.levels
        return Guarantee(unbiased=True, error=min(d / s**2, math.sqrt(d) / s))
