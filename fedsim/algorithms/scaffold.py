"""SCAFFOLD: Stochastic Controlled Averaging for Federated Learning.

Karimireddy, Kale, Mohri, Reddi, Stich and Suresh, ICML 2020, https://arxiv.org/abs/1910.06378,
Algorithm 1 with option II control variates, for the objective ``f = sum_i p_i f_i`` that the
model aggregation weights p_i define (``weighting``: p_i = n_i / n or 1/N).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fedsim.algorithms.aggregation import aggregation_weights
from fedsim.algorithms.base import RoundMetrics, ServerState
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.runtimes.base import CohortResult, Runtime

__all__ = ["Scaffold", "ScaffoldTask"]

CONTROL = "c_i"  # the client's control variate in its persistent state
SERVER_CONTROL = "c"  # the server control variate, in ServerState.extras and the broadcast


@dataclass(frozen=True)
class ScaffoldTask(ClientTask):
    """A SCAFFOLD client (Algorithm 1, lines 8-13).

    Every local step follows ``g_i(y) + c - c_i`` (line 10); afterwards option II sets
    ``c_i+ = c_i - c + (x - y_i) / (K eta_l)`` (line 12), K being the number of local steps
    taken. The client sends ``Delta y_i = y_i - x`` and ``Delta c_i = c_i+ - c_i``: twice the
    floats of FedAvg. ``c_i`` starts at zero, as in the paper's experiments.
    """

    def correction(self, state: dict[str, torch.Tensor], broadcast: dict[str, torch.Tensor]) -> torch.Tensor | None:
        c = broadcast[SERVER_CONTROL]
        return c - state[CONTROL] if CONTROL in state else c

    def finish(
        self,
        update: torch.Tensor,
        steps: int,
        state: dict[str, torch.Tensor],
        broadcast: dict[str, torch.Tensor],
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, int]:
        c_i = state.get(CONTROL, torch.zeros_like(update))
        state[CONTROL] = c_i - broadcast[SERVER_CONTROL] - update / (steps * self.local.lr)
        update, bits = super().finish(update, steps, state, broadcast, generator)
        return update, bits + FLOAT_BITS * update.numel()


class Scaffold(FedAvg):
    """SCAFFOLD with option II control variates (Karimireddy et al. 2020, Algorithm 1).

    The server keeps ``c`` in ``ServerState.extras["c"]`` and broadcasts it with ``x``; each
    client keeps ``c_i`` in the client state store, so it survives the rounds it is not sampled.
    Server step (lines 16-17, eq. (5)): ``x <- x + eta_g sum_{i in S} w_i Delta y_i`` with the
    cohort-normalised FedAvg weights w_i, and ``c <- c + sum_{i in S} p_i Delta c_i`` with the
    global weights p_i of the N clients (p_i = n_i / n for ``weighting="samples"``, 1/N for
    ``"uniform"``, where it is the paper's ``(|S|/N) (1/|S|) sum_S Delta c_i``). That keeps
    ``c = sum_i p_i c_i`` at every round, under partial participation too, so at a fixed point
    (``y_i = x``, ``c_i = grad f_i(x)``) the corrected steps vanish only where
    ``sum_i p_i grad f_i(x) = 0``: the minimiser of the objective the model is averaged for. (An
    unweighted ``c`` with sample-weighted averaging converges to the minimiser of
    ``(1/N) sum_i f_i`` instead.)

    Parameters
    ----------
    task : ClientTask
        Client work; its local SGD and transforms are reused by a :class:`ScaffoldTask`.
    client_sizes : sequence of int or None (default: None)
        n_i of all N clients, for the global weights p_i = n_i / n; required with
        ``weighting="samples"`` (the algorithm gets them when built, not from the runtime).
    **kwargs
        Every other :class:`~fedsim.algorithms.FedAvg` argument; ``server_lr`` is eta_g.
    """

    def __init__(self, *, task: ClientTask, client_sizes: Sequence[int] | torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(task=ScaffoldTask(task.local, task.transforms), **kwargs)
        if client_sizes is None and self.weighting == "samples":
            raise ValueError("Scaffold: weighting='samples' needs client_sizes (n_i of all N clients)")
        self.client_sizes = torch.as_tensor(client_sizes) if client_sizes is not None else torch.ones(self.num_clients)

    def init(self, params: torch.Tensor) -> ServerState:
        return ServerState(params.clone(), {SERVER_CONTROL: torch.zeros_like(params)})

    def broadcast(self, state: ServerState) -> dict[str, torch.Tensor]:
        return {SERVER_CONTROL: state.extras[SERVER_CONTROL]}

    def control_weights(self) -> torch.Tensor:
        """p_i over all N clients, as ``weighting`` defines the objective: n_i / n or 1/N."""
        return aggregation_weights(self.client_sizes, self.weighting)

    def train_cohort(self, state: ServerState, cohort: list[int], rnd: int, runtime: Runtime, *,
                     store_states: bool = True) -> CohortResult:
        c = state.extras[SERVER_CONTROL]
        before = {k: self.client_states.get(k).get(CONTROL) for k in cohort}
        result = super().train_cohort(state, cohort, rnd, runtime, store_states=store_states)
        p = self.control_weights()
        # result.clients, not cohort: under Flower a dropped client is missing from the result.
        delta_c = sum(
            (float(p[k]) * (new[CONTROL].to(c.device) - (b.to(c.device) if (b := before[k]) is not None else 0.0))
             for k, new in zip(result.clients, result.states)),
            torch.zeros(()),  # sum()'s 0, as a tensor for the type checker (a 0-dim tensor takes no part in dtype promotion)
        )
        state.extras[SERVER_CONTROL] = c + delta_c
        return result

    def round_metrics(self, result: CohortResult, weights: torch.Tensor, dim: int) -> RoundMetrics:
        metrics = super().round_metrics(result, weights, dim)
        metrics.bytes_down *= 2  # x and c
        return metrics
