"""Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui and Stainer, NeurIPS 2017).
(alpha, f)-Byzantine resilient (their Proposition 1) when n > 2f + 2."""

from __future__ import annotations

import torch
from torch import Tensor

from fedsim.errors import FedsimError

__all__ = ["krum", "krum_scores", "multi_krum"]


def krum_scores(updates: Tensor, f: int) -> Tensor:
    """Krum's score of each row: the summed squared distance to its ``n - f - 2`` nearest others."""
    n = updates.shape[0]
    d2 = torch.cdist(updates.double(), updates.double()).pow(2)
    d2.fill_diagonal_(float("inf"))
    k = n - f - 2
    return d2.topk(k, dim=1, largest=False).values.sum(1)


def _check_krum(n: int, f: int, name: str) -> None:
    if n <= 2 * f + 2:
        raise FedsimError(f"aggregator {name}: needs n > 2f + 2 updates, got n={n}, f={f}")


def multi_krum(updates: Tensor, weights: Tensor | None = None, f: int = 0, m: int | None = None) -> Tensor:
    """Multi-Krum (Blanchard, El Mhamdi, Guerraoui and Stainer, NeurIPS 2017): the mean of the
    ``m`` rows with the lowest Krum score (``m = 1`` is Krum; default ``m = n - f``).

    Guarantee (their Proposition 1, (alpha, f)-Byzantine resilience) needs ``n > 2f + 2``.
    """
    n = updates.shape[0]
    _check_krum(n, f, "multi_krum")
    m = n - f if m is None else m
    if not 1 <= m <= n:
        raise FedsimError(f"aggregator multi_krum: m must be in 1..n={n}, got {m}")
    chosen = krum_scores(updates, f).argsort()[:m]
    return updates[chosen].mean(0)


def krum(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Krum (Blanchard et al. 2017): the row with the lowest score; needs ``n > 2f + 2``."""
    _check_krum(updates.shape[0], f, "krum")
    return updates[krum_scores(updates, f).argmin()]
