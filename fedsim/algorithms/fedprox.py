"""FedProx: Federated Optimization in Heterogeneous Networks.

Li, Sahu, Zaheer, Sanjabi, Talwalkar and Smith, MLSys 2020, https://arxiv.org/abs/1812.06127.
"""

from __future__ import annotations

from typing import Any

from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.task import ClientTask

__all__ = ["FedProx"]


class FedProx(FedAvg):
    """FedAvg whose clients minimise ``h_k(w; w_t) = F_k(w) + mu/2 ||w - w_t||^2`` (Li et al. 2020, eq. 2).

    Only the client objective changes: every local step follows the gradient of ``h_k``,
    ``grad F_k(w) + mu (w - w_t)`` (see :func:`fedsim.client.sgd_step`). Aggregation, sampling
    and the server step are FedAvg's; with ``mu = 0`` it is FedAvg exactly.

    Parameters
    ----------
    mu : float
        Proximal weight mu >= 0 (the paper tunes it over {0.001, 0.01, 0.1, 1}).
    task : ClientTask
        Client work; its ``local.prox_mu`` is set to ``mu``.
    **kwargs
        Every other :class:`~fedsim.algorithms.FedAvg` argument.
    """

    def __init__(self, *, mu: float, task: ClientTask, **kwargs: Any) -> None:
        self.mu = mu
        super().__init__(task=task.with_local(prox_mu=mu), **kwargs)
