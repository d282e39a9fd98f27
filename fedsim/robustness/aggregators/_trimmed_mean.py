"""Coordinate-wise trimmed mean (Yin, Chen, Ramchandran and Bartlett, ICML 2018, arXiv:1803.01498,
Definition 2). Breakdown point b/n < 1/2: needs f <= b and 2b < n."""

from __future__ import annotations

from torch import Tensor

from fedsim.errors import FedsimError

__all__ = ["trimmed_mean"]


def trimmed_mean(updates: Tensor, weights: Tensor | None = None, f: int = 0, trim: int | None = None) -> Tensor:
    """Coordinate-wise trimmed mean (Yin et al. 2018, Definition 2): drop the ``b`` largest and
    ``b`` smallest values of each coordinate and average the rest (``b = trim``, default ``f``).

    Unweighted. Breakdown point ``b / n`` < 1/2: needs ``f <= b`` and ``2 b < n``.
    """
    n = updates.shape[0]
    b = f if trim is None else trim
    if 2 * b >= n or f > b:
        raise FedsimError(f"aggregator trimmed_mean: needs f <= trim < n/2, got f={f}, trim={b}, n={n}")
    s = updates.sort(0).values
    return s[b : n - b].mean(0)
