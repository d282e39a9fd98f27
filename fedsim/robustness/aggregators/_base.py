"""Shared by the aggregation rules: FedAvg's weights ``p_k``, uniform when none are given."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["weights_or_uniform"]


def weights_or_uniform(updates: Tensor, weights: Tensor | None) -> Tensor:
    """``weights`` on the updates' device and dtype, or ``1/C`` each when None."""
    if weights is None:
        return torch.full((updates.shape[0],), 1.0 / updates.shape[0], dtype=updates.dtype, device=updates.device)
    return weights.to(updates.device, updates.dtype)
