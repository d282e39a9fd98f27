"""Random dropout: send the whole message with probability p, nothing otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import FLOAT_BITS, Compressed, Compressor, Guarantee, State, check_vector
from fedsim.errors import FedsimError

__all__ = ["RandomDropout"]


@dataclass(frozen=True)
class RandomDropout(Compressor):
    """``C(x) = x`` with probability p and ``C(x) = 0`` (nothing sent) with probability 1 - p.

    Unscaled, ``E[C(x)] = p x`` and ``E||C(x) - x||^2 = (1 - p) ||x||^2`` (delta = p). Scaled by
    1/p it is unbiased with ``E||C(x) - x||^2 = (1/p - 1) ||x||^2`` exactly (the message is
    kept with probability p and scaled by 1/p; ``1/p^2``, sometimes quoted, is a looser bound). A dropped message costs 0 bits.

    Parameters
    ----------
    p : float
        Probability of sending, 0 < p <= 1.
    scaled : bool (default: True)
        Multiply a sent message by 1/p, making the operator unbiased.
    """

    p: float
    scaled: bool = True
    name = "dropout"

    def __post_init__(self) -> None:
        if not 0.0 < self.p <= 1.0:
            raise FedsimError(f"compressor 'dropout': p={self.p!r} is invalid; allowed 0 < p <= 1")

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        sent = bool(torch.rand((), generator=generator, device=x.device) < self.p)
        if not sent:
            return Compressed(torch.zeros_like(x), 0, dict(state or {}))
        return Compressed(x / self.p if self.scaled else x, FLOAT_BITS * d, dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        if self.scaled:
            return Guarantee(unbiased=True, error=1.0 / self.p - 1.0)
        return Guarantee(unbiased=self.p == 1.0, error=1.0 - self.p)
