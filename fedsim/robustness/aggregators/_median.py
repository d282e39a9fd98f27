"""Coordinate-wise median (Yin, Chen, Ramchandran and Bartlett, ICML 2018, arXiv:1803.01498).
Breakdown point 1/2: needs f < n/2."""

from __future__ import annotations

from torch import Tensor

from fedsim.errors import FedsimError

__all__ = ["coordinate_median"]


def coordinate_median(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Coordinate-wise median (Yin, Chen, Ramchandran and Bartlett, ICML 2018, arXiv:1803.01498).

    Unweighted; for even n the mean of the two middle values. Breakdown point 1/2: with f < n/2
    arbitrary rows every coordinate stays within the honest rows' range of that coordinate.
    """
    n = updates.shape[0]
    if 2 * f >= n:
        raise FedsimError(f"aggregator median: needs f < n/2 Byzantine updates, got f={f} of n={n}")
    s = updates.sort(0).values
    return s[(n - 1) // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
