"""FedAvg: Communication-Efficient Learning of Deep Networks from Decentralized Data.

McMahan, Moore, Ramage, Hampson and Aguera y Arcas, AISTATS 2017, https://arxiv.org/abs/1602.05629.
"""

from __future__ import annotations

import torch
from typing import Any

from fedsim.algorithms.aggregation import AggregationRule, aggregation_weights, weighted_mean
from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.heterogeneity import LocalWork, run_grouped
from fedsim.algorithms.sampling import Participation, UniformSampling
from fedsim.algorithms.schedules import LRSchedule
from fedsim.algorithms.simulated_clock import SimulatedClock
from fedsim.client.state import ClientStateStore
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.robustness.byzantine import ByzantineClients
from fedsim.runtimes.base import CohortResult, Runtime
from fedsim.seeding import torch_generator

__all__ = ["FedAvg"]


class FedAvg(Algorithm):
    """Federated averaging with partial participation and a server learning rate.

    Each round: sample a cohort S_t (by default ``clients_per_round`` clients uniformly without
    replacement), broadcast ``w``, each runs local SGD and returns ``Delta_k = w_k - w``, the
    server takes ``w <- w + server_lr * sum_k p_k Delta_k``. With ``server_lr = 1`` this is model
    averaging, spec eq. (259); it equals the pseudo-gradient form (260). A round whose Poisson
    cohort is empty leaves ``w`` unchanged.

    The round is named stages, and a variant overrides one of them: :meth:`sample` (who takes
    part), :meth:`train_cohort` (broadcast and client work; SCAFFOLD's control variates),
    :meth:`aggregate` (cohort result and weights -> one update: DP-Fed-LS' noised, smoothed sum;
    a robust rule through ``aggregator``), :meth:`server_update` (update -> new ``w``: server
    optimizers) and :meth:`round_metrics`.

    Parameters
    ----------
    num_clients : int
        Number of clients K in the federation.
    clients_per_round : int or None (default: None)
        Clients sampled per round, r <= K, uniformly without replacement; used when
        ``participation`` is None.
    task : ClientTask
        Client work (local SGD hyperparameters and update transforms).
    server_lr : float (default: 1.0)
        Server step size on the averaged update (Reddi et al. 2021's eta).
    weighting : {"samples", "uniform"} (default: "samples")
        Aggregation weights p_k: proportional to the client's sample count, or equal.
    seed : int (default: 0)
        Root seed; the round's cohort comes from the ``(seed, "sampling", round)`` stream.
    participation : Participation (default: UniformSampling(clients_per_round))
        ``f(num_clients, generator) -> cohort`` with an ``expected_size``: one of
        :mod:`fedsim.algorithms.sampling`.
    client_lr_schedule, server_lr_schedule : LRSchedule (default: constant)
        Round-indexed factors on the client ``lr`` and on ``server_lr``.
    local_work : LocalWork or None (default: None)
        Heterogeneous local epochs/steps across clients; None gives every client ``task.local``.
    client_states : ClientStateStore (default: a new in-memory store)
        Where stateful clients keep their state between rounds.
    aggregator : AggregationRule or None (default: None, the weighted mean)
        ``f(updates (C, d), weights (C,)) -> (d,)``: the rule :meth:`aggregate` applies (a robust
        rule of :mod:`fedsim.robustness.aggregators`, say); None is ``sum_k p_k Delta_k``.
    byzantine : ByzantineClients or None (default: None)
        Malicious clients; their rows of the received updates are replaced by their attack
        before aggregation (omniscient attacks see the round's honest rows).
    clock : SimulatedClock or None (default: None)
        Device speeds, links, availability and a deadline: only online clients are sampled,
        reports past the deadline (or beyond the first ``wait_for``) or from clients that went
        offline are dropped (their state is not kept), and rounds report ``sim_time_s``,
        ``clients_dropped`` and ``clients_stale``. None: rounds take no time.
    """

    def __init__(
        self,
        *,
        num_clients: int,
        clients_per_round: int | None = None,
        task: ClientTask,
        server_lr: float = 1.0,
        weighting: str = "samples",
        seed: int = 0,
        participation: Participation | None = None,
        client_lr_schedule: LRSchedule = LRSchedule(),
        server_lr_schedule: LRSchedule = LRSchedule(),
        local_work: LocalWork | None = None,
        client_states: ClientStateStore | None = None,
        aggregator: AggregationRule | None = None,
        byzantine: ByzantineClients | None = None,
        clock: SimulatedClock | None = None,
    ) -> None:
        self.num_clients = num_clients
        self.clients_per_round = clients_per_round
        self.task = task
        self.server_lr = server_lr
        self.weighting = weighting
        self.seed = seed
        # clients_per_round may be None only together with an explicit participation rule (every config gives one or the other)
        self.participation = participation if participation is not None else UniformSampling(clients_per_round)  # type: ignore[arg-type]
        self.client_lr_schedule = client_lr_schedule
        self.server_lr_schedule = server_lr_schedule
        self.local_work = local_work
        self.client_states = client_states if client_states is not None else ClientStateStore()
        self.aggregator = aggregator
        self.byzantine = byzantine
        self.clock = clock
        self.timing: dict[str, float] = {}  # the clock stage's metrics of the current round

    def sample(self, rnd: int) -> list[int]:
        generator = torch_generator(self.seed, "sampling", rnd)
        if self.clock is not None:
            return self.clock.sample(self.participation, self.num_clients, generator)
        return self.participation(self.num_clients, generator)

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        cohort = self.sample(rnd)
        # An empty Poisson cohort, or a clock that dropped every report, leaves an empty result.
        result = self.train_cohort(state, cohort, rnd, runtime) if cohort else CohortResult.empty(state.params)
        weights = aggregation_weights(result.num_samples, self.weighting)
        update = self.aggregate(result, weights, rnd)
        if update is not None:
            state.params = self.server_update(state, update, rnd)
        metrics = self.round_metrics(result, weights, state.params.numel())
        if self.clock is not None and cohort:  # dropped clients downloaded the model too
            metrics.bytes_down = len(cohort) * state.params.numel() * FLOAT_BITS // 8
            metrics.extra.update(self.timing)
        return metrics

    def aggregate(self, result: CohortResult, weights: torch.Tensor, rnd: int) -> torch.Tensor | None:
        """The aggregate stage: the update :meth:`server_update` applies, None to leave ``w`` as is.

        ``weights`` are the ``p_k`` of ``result``'s rows. FedAvg applies ``aggregator`` to the
        ``(C, d)`` updates (``sum_k p_k Delta_k`` by default); an empty cohort gives None.
        """
        if not result.clients:
            return None
        if self.aggregator is None:
            return weighted_mean(result.updates, weights)
        return self.aggregator(result.updates, weights.to(result.updates.device)).to(result.updates.dtype)

    def round_task(self, rnd: int) -> ClientTask:
        """The client task of round ``rnd``: ``task`` with the scheduled client learning rate."""
        factor = self.client_lr_schedule.factor(rnd)
        if factor == 1.0:
            return self.task
        return self.task.with_local(lr=self.task.local.lr * factor)

    def broadcast(self, state: ServerState) -> dict[str, torch.Tensor]:
        """Server tensors sent to every client besides ``w`` (SCAFFOLD's control variate)."""
        return {}

    def train_cohort(self, state: ServerState, cohort: list[int], rnd: int, runtime: Runtime, *,
                     store_states: bool = True) -> CohortResult:
        """Broadcast, local training, the clock stage, and storing the clients' new states.

        ``store_states=False`` leaves storing to the caller (asynchronous rules store a state
        when its client's report arrives).
        """
        broadcast = self.broadcast(state)

        def run(task: ClientTask, clients: list[int], states: list[dict[str, torch.Tensor]]) -> CohortResult:
            return runtime.run_cohort(task, state.params, clients, rnd, states, broadcast)

        task, states = self.round_task(rnd), [self.client_states.get(c) for c in cohort]
        locals_ = [self.local_work.local_for(task.local, c, rnd) if self.local_work else task.local for c in cohort]
        if self.clock is not None:
            locals_ = self.clock.within_deadline(locals_, cohort, state.params.numel())
        result = run_grouped(task, cohort, locals_, states, run)
        if self.clock is not None:
            result = self.meet_deadline(result, task, state.params.numel())
        if store_states:
            for client, client_state in zip(result.clients, result.states):
                self.client_states.put(client, client_state)
        if self.byzantine is not None:
            result.updates = self.byzantine.corrupt(result.updates, result.clients, rnd)
        return result

    def meet_deadline(self, result: CohortResult, task: ClientTask, dim: int) -> CohortResult:
        """The clock stage: advance simulated time; keep the reports that made the round."""
        assert self.clock is not None
        kept, self.timing = self.clock.close_round(result, task.local, dim)
        return result.select(torch.nonzero(kept).flatten().tolist())

    def lr_at(self, rnd: int) -> float:
        """The server step size of round ``rnd``."""
        return self.server_lr * self.server_lr_schedule.factor(rnd)

    def server_update(self, state: ServerState, delta: torch.Tensor, rnd: int = 0) -> torch.Tensor:
        """``w + server_lr * Delta``; server optimizers override this stage only."""
        return state.params + self.lr_at(rnd) * delta.to(state.params.device)

    def round_metrics(self, result: CohortResult, weights: torch.Tensor, dim: int) -> RoundMetrics:
        """Cohort size, weighted train loss (NaN for an empty cohort) and the bytes each link carried."""
        return RoundMetrics(
            clients=len(result.clients),
            train_loss=float(weights @ result.train_loss.double()) if result.clients else float("nan"),
            bytes_up=int(result.bits_up.sum().item()) // 8,
            bytes_down=len(result.clients) * dim * FLOAT_BITS // 8,
        )

    def state_dict(self) -> dict[str, Any]:
        clock = {"clock": self.clock.state_dict()} if self.clock is not None else {}
        return {"client_states": self.client_states.state_dict(), **clock}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.client_states.load_state_dict(sd["client_states"])
        if self.clock is not None:
            self.clock.load_state_dict(sd["clock"])
