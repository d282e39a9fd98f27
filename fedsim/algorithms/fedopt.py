"""Server optimizers on the FedAvg pseudo-gradient: FedAvgM, FedAdagrad, FedAdam, FedYogi.

Reddi, Charles, Zaheer, Garrett, Rush, Konecny, Kumar and McMahan, "Adaptive Federated
Optimization", ICLR 2021, https://arxiv.org/abs/2003.00295 (Algorithm 2), and for server momentum
Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data Distribution for Federated Visual
Classification", 2019, https://arxiv.org/abs/1909.06335.

Clients are FedAvg's; only the server stage differs. The pseudo-gradient of round t is
``Delta_t = sum_k p_k (w_k - w_t)`` (a descent direction, so the server adds it). Moments live in
``ServerState.extras`` (``"m"``, ``"v"``) so checkpoints carry them.
"""

from __future__ import annotations

from typing import Any

import torch

from fedsim.algorithms.base import ServerState
from fedsim.algorithms.fedavg import FedAvg

__all__ = ["FedAdagrad", "FedAdam", "FedAvgM", "FedOpt", "FedYogi"]


class FedAvgM(FedAvg):
    """FedAvg with server momentum (Hsu et al. 2019; Reddi et al. 2021, section 3).

    ``m_t = beta m_{t-1} + Delta_t``, ``w_{t+1} = w_t + eta m_t``, with ``m_{-1} = 0``: heavy-ball
    SGD on the server with the pseudo-gradient as its (negated) gradient.

    Parameters
    ----------
    momentum : float (default: 0.9)
        Server momentum beta in [0, 1); 0 is FedAvg.
    **kwargs
        Every :class:`~fedsim.algorithms.FedAvg` argument; ``server_lr`` is eta.
    """

    def __init__(self, *, momentum: float = 0.9, **kwargs: Any) -> None:
        self.momentum = momentum
        super().__init__(**kwargs)

    def server_update(self, state: ServerState, delta: torch.Tensor, rnd: int = 0) -> torch.Tensor:
        delta = delta.to(state.params.device)
        m = self.momentum * state.extras.get("m", torch.zeros_like(delta)) + delta
        state.extras["m"] = m
        return state.params + self.lr_at(rnd) * m


class FedOpt(FedAvg):
    """The shared stage of FedAdagrad, FedAdam and FedYogi (Reddi et al. 2021, Algorithm 2).

    ``m_t = beta1 m_{t-1} + (1 - beta1) Delta_t``, ``v_t = rule(v_{t-1}, Delta_t^2)``,
    ``w_{t+1} = w_t + eta m_t / (sqrt(v_t) + tau)``, with ``m_{-1} = 0`` and ``v_{-1} = tau^2``
    (the algorithm asks for ``v_{-1} >= tau^2``; the smallest choice is taken). As in the paper
    there is no bias correction. Subclasses define :meth:`second_moment` only.

    Parameters
    ----------
    beta1 : float (default: 0.9)
        First-moment decay in [0, 1).
    beta2 : float (default: 0.99)
        Second-moment decay in [0, 1) (unused by FedAdagrad).
    tau : float (default: 1e-3)
        Adaptivity tau > 0: larger tau makes the step less adaptive.
    **kwargs
        Every :class:`~fedsim.algorithms.FedAvg` argument; ``server_lr`` is eta.
    """

    def __init__(self, *, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3, **kwargs: Any) -> None:
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
        super().__init__(**kwargs)

    def second_moment(self, v: torch.Tensor, delta_sq: torch.Tensor) -> torch.Tensor:
        """``v_t`` from ``v_{t-1}`` and ``Delta_t^2``."""
        raise NotImplementedError

    def server_update(self, state: ServerState, delta: torch.Tensor, rnd: int = 0) -> torch.Tensor:
        delta = delta.to(state.params.device)
        m = self.beta1 * state.extras.get("m", torch.zeros_like(delta)) + (1.0 - self.beta1) * delta
        v = self.second_moment(state.extras.get("v", torch.full_like(delta, self.tau**2)), delta * delta)
        state.extras["m"], state.extras["v"] = m, v
        return state.params + self.lr_at(rnd) * m / (v.sqrt() + self.tau)


class FedAdagrad(FedOpt):
    """FedAdagrad (Reddi et al. 2021, Algorithm 2): ``v_t = v_{t-1} + Delta_t^2``.

    Parameters
    ----------
    beta1 : float (default: 0.0)
        First-moment decay; 0 uses the current pseudo-gradient only, as Adagrad does.
    **kwargs
        Every :class:`FedOpt` argument.
    """

    def __init__(self, *, beta1: float = 0.0, **kwargs: Any) -> None:
        super().__init__(beta1=beta1, **kwargs)

    def second_moment(self, v: torch.Tensor, delta_sq: torch.Tensor) -> torch.Tensor:
        return v + delta_sq


class FedAdam(FedOpt):
    """FedAdam (Reddi et al. 2021, Algorithm 2): ``v_t = beta2 v_{t-1} + (1 - beta2) Delta_t^2``.

    Parameters
    ----------
    **kwargs
        Every :class:`FedOpt` argument (beta1 = 0.9, beta2 = 0.99, tau = 1e-3 by default).
    """

    def second_moment(self, v: torch.Tensor, delta_sq: torch.Tensor) -> torch.Tensor:
        return self.beta2 * v + (1.0 - self.beta2) * delta_sq


class FedYogi(FedOpt):
    """FedYogi (Reddi et al. 2021, Algorithm 2; Zaheer et al. 2018):
    ``v_t = v_{t-1} - (1 - beta2) Delta_t^2 sign(v_{t-1} - Delta_t^2)``.

    Parameters
    ----------
    **kwargs
        Every :class:`FedOpt` argument (beta1 = 0.9, beta2 = 0.99, tau = 1e-3 by default).
    """

    def second_moment(self, v: torch.Tensor, delta_sq: torch.Tensor) -> torch.Tensor:
        return v - (1.0 - self.beta2) * delta_sq * torch.sign(v - delta_sq)
