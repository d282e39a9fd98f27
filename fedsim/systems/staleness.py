"""Staleness weights for asynchronous aggregation.

An update computed on the model of version ``tau`` and applied at version ``t`` has staleness
``s = t - tau >= 0``. FedAsync (Xie, Koyejo and Gupta 2019, "Asynchronous Federated Optimization",
https://arxiv.org/abs/1903.03934, section 5.2) mixes it with weight ``alpha * S(s)`` for

* constant:   ``S(s) = 1``
* polynomial: ``S(s) = (s + 1) ** -a``
* hinge:      ``S(s) = 1`` if ``s <= b`` else ``1 / (a (s - b) + 1)``

FedBuff (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation",
https://arxiv.org/abs/2106.06639, Algorithm 1) scales each buffered update by ``1 / sqrt(1 + s)``.
"""

from __future__ import annotations

import torch

__all__ = ["STALENESS_RULES", "constant_staleness", "fedbuff_staleness", "hinge_staleness", "polynomial_staleness"]


def constant_staleness(s: torch.Tensor) -> torch.Tensor:
    """``S(s) = 1``."""
    return torch.ones_like(s, dtype=torch.float64)


def polynomial_staleness(s: torch.Tensor, a: float = 0.5) -> torch.Tensor:
    """``S(s) = (s + 1) ** -a`` (FedAsync's polynomial rule)."""
    return (s.double() + 1.0) ** (-a)


def hinge_staleness(s: torch.Tensor, a: float = 10.0, b: float = 4.0) -> torch.Tensor:
    """``S(s) = 1`` for ``s <= b``, else ``1 / (a (s - b) + 1)`` (FedAsync's hinge rule)."""
    s = s.double()
    return torch.where(s <= b, torch.ones_like(s), 1.0 / (a * (s - b) + 1.0))


def fedbuff_staleness(s: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(1 + s)`` (FedBuff's staleness scaling)."""
    return 1.0 / torch.sqrt(1.0 + s.double())


STALENESS_RULES = {
    "constant": constant_staleness,
    "polynomial": polynomial_staleness,
    "hinge": hinge_staleness,
    "sqrt": fedbuff_staleness,
}
