"""FedNova: normalized averaging for clients doing different amounts of local work.

Wang, Liu, Liang, Joshi and Poor, "Tackling the Objective Inconsistency Problem in Heterogeneous
Federated Optimization", NeurIPS 2020, https://arxiv.org/abs/2007.07481, section 4 (eq. 8).

With heterogeneous local steps tau_i, FedAvg's ``sum_i p_i Delta_i`` weighs clients by
``p_i tau_i`` and converges to the minimiser of a surrogate objective ``sum_i p_i tau_i f_i / sum
p_i tau_i`` (the paper's Theorem 1). FedNova normalises each update by the l1 norm of its local
solver's accumulation vector ``a_i`` and rescales by the effective step count::

    d_i = Delta_i / ||a_i||_1,     Delta = tau_eff * sum_i p_i d_i,     tau_eff = sum_i p_i ||a_i||_1

For local SGD ``a_i = (1, ..., 1)`` and ``||a_i||_1 = tau_i``; with weight decay lambda the step
is ``w <- rho w - eta g`` for ``rho = 1 - eta lambda``, so ``a_i = (rho^(tau-1), ..., rho, 1)`` and
``||a_i||_1 = (1 - rho^tau_i) / (1 - rho)``. With equal tau_i FedNova is FedAvg.
"""

from __future__ import annotations

import torch

from fedsim.algorithms.aggregation import weighted_mean
from fedsim.algorithms.fedavg import FedAvg
from fedsim.runtimes.base import CohortResult

__all__ = ["FedNova", "accumulation_norm"]


def accumulation_norm(steps: torch.Tensor, lr: float, weight_decay: float = 0.0) -> torch.Tensor:
    """``||a_i||_1`` of local SGD: ``tau_i``, or ``(1 - rho^tau_i) / (1 - rho)`` with ``rho = 1 - lr * weight_decay``."""
    steps = steps.double()
    rho = 1.0 - lr * weight_decay
    if rho == 1.0:
        return steps
    return (1.0 - rho**steps) / (1.0 - rho)


class FedNova(FedAvg):
    """FedAvg with FedNova's normalized aggregate stage (module docstring); every other stage is FedAvg's.

    Parameters
    ----------
    **kwargs
        Every :class:`~fedsim.algorithms.FedAvg` argument; heterogeneous work comes from
        ``local_work`` (stragglers) or a ``clock`` with ``partial_work``.
    """

    def aggregate(self, result: CohortResult, weights: torch.Tensor, rnd: int) -> torch.Tensor | None:
        if not result.clients:
            return None
        local = self.round_task(rnd).local
        norms = accumulation_norm(result.steps, local.lr, local.weight_decay).clamp_min(1e-12)
        tau_eff = float(weights @ norms)
        normalized = result.updates / norms.to(result.updates)[:, None]
        return tau_eff * weighted_mean(normalized, weights)
