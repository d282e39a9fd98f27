"""Top-k sparsification: keep the k coordinates of largest magnitude (Stich, Cordonnier and Jaggi,
"Sparsified SGD with Memory", NeurIPS 2018)."""

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

__all__ = ["TopK", "scatter_kept"]


def scatter_kept(x: Tensor, idx: Tensor, scale: float = 1.0) -> Tensor:
    """A zero vector shaped like ``x`` holding ``scale * x[idx]`` at ``idx``."""
    out = torch.zeros_like(x)
    kept = x[idx]
    out[idx] = kept if scale == 1.0 else kept * scale
    return out


@dataclass(frozen=True)
class TopK(Compressor):
    """Top-k sparsification (Stich, Cordonnier and Jaggi, "Sparsified SGD with Memory", NeurIPS 2018).

    Deterministic and biased; for every x, ``||top_k(x) - x||^2 <= (1 - k/d) ||x||^2``, so it is
    a delta-contraction with delta = k/d (Stich et al. 2018, Lemma A.1). Sends k float32 values and k
    indices of ``ceil(log2 d)`` bits.

    Parameters
    ----------
    k : int, optional
        Number of kept coordinates.
    ratio : float, optional
        Fraction of d to keep, ``k = ceil(ratio d)``; exactly one of k or ratio.
    """

    k: int | None = None
    ratio: float | None = None
    name = "top_k"

    def __post_init__(self) -> None:
        check_k_or_ratio(self.name, self.k, self.ratio)

    def select(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, float]:
        """The kept indices and the scale applied to their values (1 for top-k)."""
        k = resolve_k(self.name, self.k, self.ratio, x.numel())
        return torch.topk(x.abs(), k, sorted=False).indices, 1.0

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        idx, scale = self.select(x, generator)
        return Compressed(scatter_kept(x, idx, scale), idx.numel() * (FLOAT_BITS + index_bits(d)), dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        return Guarantee(unbiased=False, error=1.0 - resolve_k(self.name, self.k, self.ratio, d) / d)
