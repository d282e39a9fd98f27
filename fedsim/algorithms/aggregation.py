"""Aggregation of client updates: FedAvg's weights and the rule the aggregate stage applies."""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["AggregationRule", "aggregation_weights", "weighted_mean"]


class AggregationRule(Protocol):
    """What the FedAvg family's aggregate stage applies to a cohort: ``(C, d)`` updates and
    ``(C,)`` weights summing to one -> the ``(d,)`` aggregate update.

    :func:`weighted_mean` is FedAvg's; a Byzantine-robust rule
    (:class:`fedsim.robustness.aggregators.Aggregator`) has the same signature.
    """

    def __call__(self, updates: torch.Tensor, weights: torch.Tensor) -> torch.Tensor: ...


def aggregation_weights(num_samples: torch.Tensor, weighting: str) -> torch.Tensor:
    """FedAvg's weights: ``n_k / sum n_k`` (``samples``, McMahan et al. 2017) or ``1/|S|`` (``uniform``)."""
    if weighting == "samples":
        w = num_samples.double()
    elif weighting == "uniform":
        w = torch.ones(len(num_samples), dtype=torch.float64)
    else:
        raise ValueError(f"weighting must be 'samples' or 'uniform', got {weighting!r}")
    return w / w.sum()


def weighted_mean(updates: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k p_k Delta_k`` for a ``(C, d)`` matrix of updates and weights ``p`` summing to one."""
    return weights.to(updates.dtype).to(updates.device) @ updates
