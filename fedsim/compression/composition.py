"""Sparsify then quantize: QSGD applied to the k values a sparsifier keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from fedsim.compression.base import Compressed, Compressor, Guarantee, State, check_vector, index_bits, resolve_k
from fedsim.compression.qsgd import QSGD
from fedsim.compression.randomk import RandomK
from fedsim.compression.topk import TopK
from fedsim.errors import FedsimError

__all__ = ["SparsifyQuantize"]

_SPARSIFIERS = {"top_k": TopK, "random_k": RandomK}


@dataclass(frozen=True)
class SparsifyQuantize(Compressor):
    """``C(x) = Q_s(S(x))``: a sparsifier S keeps k coordinates, QSGD quantizes their values.

    Sends k indices of ``ceil(log2 d)`` bits and the QSGD code of a k-vector. Class, with
    ``omega_q = min(k/s^2, sqrt(k)/s)`` the QSGD constant on the kept values:

    - S = scaled random-k (omega_s = d/k - 1): unbiased, ``omega = (1 + omega_s)(1 + omega_q) - 1``
      (condition on S, then E||Q(y) - y||^2 <= omega_q ||y||^2 and E||S(x)||^2 = (1 + omega_s)||x||^2).
    - S = top-k (delta_s = k/d): S(x) and S(x) - x have disjoint supports, so
      ``E||C(x) - x||^2 <= ||x||^2 + (omega_q - 1)||S(x)||^2``, a delta-contraction with
      ``delta = delta_s (1 - omega_q)`` when omega_q < 1 and otherwise only bounded by omega_q.

    Parameters
    ----------
    levels : int
        QSGD levels s >= 1.
    k, ratio : int or float, optional
        Kept coordinates, exactly one of the two (see :class:`TopK`).
    sparsifier : {"top_k", "random_k"} (default: "top_k")
        The sparsifier; random-k is the unbiased (scaled) one.
    """

    levels: int
    k: int | None = None
    ratio: float | None = None
    sparsifier: str = "top_k"
    _sparse: TopK | RandomK = field(init=False, repr=False, compare=False)
    _quant: QSGD = field(init=False, repr=False, compare=False)
    name = "sparsify_quantize"

    def __post_init__(self) -> None:
        if self.sparsifier not in _SPARSIFIERS:
            raise FedsimError(
                f"compressor 'sparsify_quantize': sparsifier={self.sparsifier!r} is unknown; "
                f"allowed: {', '.join(_SPARSIFIERS)}"
            )
        object.__setattr__(self, "_sparse", _SPARSIFIERS[self.sparsifier](k=self.k, ratio=self.ratio))
        object.__setattr__(self, "_quant", QSGD(self.levels))

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        idx, scale = self._sparse.select(x, generator)
        kept = self._quant.compress(x[idx] * scale, generator)
        out = torch.zeros_like(x)
        out[idx] = kept.value
        return Compressed(out, idx.numel() * index_bits(d) + kept.bits, dict(state or {}))

    def guarantee(self, d: int) -> Guarantee:
        sparse = self._sparse.guarantee(d)
        omega_q = self._quant.guarantee(resolve_k(self.name, self.k, self.ratio, d)).error
        if sparse.unbiased:
            return Guarantee(unbiased=True, error=(1.0 + sparse.error) * (1.0 + omega_q) - 1.0)
        shrink = 1.0 - sparse.error if omega_q <= 1.0 else 1.0
        return Guarantee(unbiased=False, error=1.0 + (omega_q - 1.0) * shrink)
