"""FedAvg: Communication-Efficient Learning of Deep Networks from Decentralized Data.

McMahan, Moore, Ramage, Hampson and Aguera y Arcas, AISTATS 2017, https://arxiv.org/abs/1602.05629.
"""

from __future__ import annotations

import torch

from fedsim.algorithms.aggregation import aggregation_weights, weighted_mean
from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.sampling import uniform_sample
from fedsim.client.state import ClientStateStore
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.runtimes.base import CohortResult, Runtime
from fedsim.seeding import torch_generator

__all__ = ["FedAvg"]


class FedAvg(Algorithm):
    """Federated averaging with partial participation and a server learning rate.

    Each round: sample ``clients_per_round`` clients uniformly without replacement, broadcast
    ``w``, each runs local SGD and returns ``Delta_k = w_k - w``, the server takes
    ``w <- w + server_lr * sum_k p_k Delta_k``. With ``server_lr = 1`` this is model averaging.

    Parameters
    ----------
    num_clients : int
        Number of clients K in the federation.
    clients_per_round : int
        Clients sampled per round, r <= K.
    task : ClientTask
        Client work (local SGD hyperparameters and update transforms).
    server_lr : float (default: 1.0)
        Server step size on the averaged update (Reddi et al. 2021's eta).
    weighting : {"samples", "uniform"} (default: "samples")
        Aggregation weights p_k: proportional to the client's sample count, or equal.
    seed : int (default: 0)
        Root seed; the round's cohort comes from the ``(seed, "sampling", round)`` stream.
    """

    def __init__(
        self,
        *,
        num_clients: int,
        clients_per_round: int,
        task: ClientTask,
        server_lr: float = 1.0,
        weighting: str = "samples",
        seed: int = 0,
    ) -> None:
        self.num_clients = num_clients
        self.clients_per_round = clients_per_round
        self.task = task
        self.server_lr = server_lr
        self.weighting = weighting
        self.seed = seed
        self.client_states = ClientStateStore()

    def sample(self, rnd: int) -> list[int]:
        return uniform_sample(self.num_clients, self.clients_per_round, torch_generator(self.seed, "sampling", rnd))

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        cohort = self.sample(rnd)
        result = self.train_cohort(state, cohort, rnd, runtime)
        weights = aggregation_weights(result.num_samples, self.weighting)
        state.params = self.server_update(state, weighted_mean(result.updates, weights))
        return self.round_metrics(result, weights, state.params.numel())

    def train_cohort(self, state: ServerState, cohort: list[int], rnd: int, runtime: Runtime) -> CohortResult:
        """Broadcast, local training, and storing the clients' new states."""
        states = [self.client_states.get(c) for c in cohort]
        result = runtime.run_cohort(self.task, state.params, cohort, rnd, states)
        for client, client_state in zip(cohort, result.states):
            self.client_states.put(client, client_state)
        return result

    def server_update(self, state: ServerState, delta: torch.Tensor) -> torch.Tensor:
        """``w + server_lr * Delta``; server optimizers override this stage only."""
        return state.params + self.server_lr * delta.to(state.params.device)

    @staticmethod
    def round_metrics(result: CohortResult, weights: torch.Tensor, dim: int) -> RoundMetrics:
        return RoundMetrics(
            clients=len(result.clients),
            train_loss=float(weights @ result.train_loss.double()),
            bytes_up=int(result.bits_up.sum().item()) // 8,
            bytes_down=len(result.clients) * dim * FLOAT_BITS // 8,
        )

    def state_dict(self) -> dict[str, object]:
        return {"client_states": self.client_states.state_dict()}

    def load_state_dict(self, sd: dict[str, object]) -> None:
        self.client_states.load_state_dict(sd["client_states"])  # type: ignore[arg-type]
