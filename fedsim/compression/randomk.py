"""Random-k sparsification, biased or scaled to be unbiased (Stich, Cordonnier and Jaggi 2018; Wangni et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import (
    FLOAT_BITS,
    Compressed,
    Compressor,
    Guarantee,
    State,
    check_k_or_ratio,
    check_vector,
    index_bits,
    resolve_k,
)
from fedsim.compression.topk import scatter_kept

__all__ = ["RandomK"]


@dataclass(frozen=True)
class RandomK(Compressor):
    """Random-k sparsification: keep k of d coordinates chosen uniformly without replacement.

    Unscaled, ``E[C(x)] = (k/d) x`` and ``E||C(x) - x||^2 = (1 - k/d) ||x||^2`` exactly
    (delta-contraction, delta = k/d). Scaled by d/k (Wangni et al., "Gradient Sparsification
    for Communication-Efficient Distributed Optimization", NeurIPS 2018) it is unbiased with
    ``E||C(x) - x||^2 = (d/k - 1) ||x||^2`` exactly (each coordinate is kept with probability k/d
    and scaled by d/k; ``(d/k)^2``, sometimes quoted, is a looser bound). Sends k float32 values and k indices of ``ceil(log2 d)`` bits:
    indices are counted even though a shared seed could regenerate them.

    Parameters
    ----------
    k : int, optional
        Number of kept coordinates.
    ratio : float, optional
        Fraction of d to keep, ``k = ceil(ratio d)``; exactly one of k or ratio.
    scaled : bool (default: True)
        Multiply the kept values by d/k, making the operator unbiased.
    """

    k: int | None = None
    ratio: float | None = None
    scaled: bool = True
    name = "random_k"

    def __post_init__(self) -> None:
        check_k_or_ratio(self.name, self.k, self.ratio)

    def select(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, float]:
        """The kept indices (uniform without replacement) and the scale applied to their values."""
        d = x.numel()
        k = resolve_k(self.name, self.k, self.ratio, d)
        return torch.randperm(d, generator=generator, device=x.device)[:k], d / k if self.scaled else 1.0

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        idx, scale = self.select(x, generator)
        return Compressed(scatter_kept(x, idx, scale), idx.numel() * (FLOAT_BITS + index_bits(d)), dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        k = resolve_k(self.name, self.k, self.ratio, d)
        if self.scaled:
            return Guarantee(unbiased=True, error=d / k - 1.0)
        return Guarantee(unbiased=k == d, error=1.0 - k / d)
