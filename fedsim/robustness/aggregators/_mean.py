"""Weighted mean, FedAvg's aggregate (McMahan et al., AISTATS 2017, arXiv:1602.05629). Breakdown point 0."""

from __future__ import annotations

from torch import Tensor

from fedsim.robustness.aggregators._base import weights_or_uniform

__all__ = ["mean"]


def mean(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Weighted mean ``sum_k p_k Delta_k`` (FedAvg, McMahan et al. 2017).

    Breakdown point 0: one arbitrary row moves the result arbitrarily far.
    """
    return weights_or_uniform(updates, weights) @ updates
