"""Geometric median by smoothed Weiszfeld: RFA (Pillutla, Kakade and Harchaoui, IEEE TSP 2022,
arXiv:1912.13445). Breakdown point 1/2 of the total weight."""

from __future__ import annotations

from torch import Tensor

from fedsim.robustness.aggregators._base import weights_or_uniform

__all__ = ["geometric_median"]


def geometric_median(
    updates: Tensor, weights: Tensor | None = None, f: int = 0, nu: float = 1e-6, iterations: int = 100, tol: float = 1e-8
) -> Tensor:
    """Weighted geometric median ``argmin_z sum_k p_k ||z - Delta_k||`` by smoothed Weiszfeld.

    RFA (Pillutla, Kakade and Harchaoui, IEEE TSP 2022, arXiv:1912.13445), Algorithm 2:
    ``z <- sum_k beta_k Delta_k / sum_k beta_k`` with ``beta_k = p_k / max(nu, ||z - Delta_k||)``,
    from the weighted mean, until the objective changes by less than ``tol`` (relative).
    Breakdown point 1/2 (of the total weight).
    """
    w = weights_or_uniform(updates, weights).double()
    x = updates.double()
    z = w @ x
    obj = (w * (x - z).norm(dim=1)).sum()
    for _ in range(iterations):
        beta = w / (x - z).norm(dim=1).clamp_min(nu)
        z = beta @ x / beta.sum()
        new = (w * (x - z).norm(dim=1)).sum()
        if (obj - new).abs() <= tol * new.clamp_min(1e-30):
            break
        obj = new
    return z.to(updates.dtype)
