"""Asynchronous federated training on the simulated clock: FedBuff and FedAsync.

FedBuff (Nguyen, Malik, Zhan, Yousefpour, Rabbat, Malek and Huba, "Federated Learning with
Buffered Asynchronous Aggregation", AISTATS 2022, https://arxiv.org/abs/2106.06639, Algorithm 1):
``concurrency`` clients train at all times; each arriving update, scaled by its staleness weight,
goes into a buffer, and after every ``buffer_size`` arrivals the server steps on the buffer's
mean with its own optimizer (any of the FedAvg family's server stages).

FedAsync (Xie, Koyejo and Gupta, "Asynchronous Federated Optimization", 2019,
https://arxiv.org/abs/1903.03934, Algorithm 1): the server mixes every arriving model into the
global one, ``x <- (1 - a_t) x + a_t x_k`` with ``a_t = alpha * S(t - tau)``.

One :meth:`round` of either is one server step (one model version). The core is event-driven:
a priority queue of completion times (:class:`~fedsim.systems.EventQueue`, deterministic for a
seed). Work still runs batched: the clients dispatched at one model version start from the same
parameters and are trained together by one ``run_cohort`` call, so an asynchronous run costs a
synchronous one's runtime calls, not one Python call per client.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from fedsim.algorithms.aggregation import aggregation_weights
from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.sampling import uniform_sample
from fedsim.algorithms.simulated_clock import SimulatedClock
from fedsim.client.task import FLOAT_BITS
from fedsim.runtimes.base import CohortResult, Runtime
from fedsim.seeding import torch_generator
from fedsim.systems import EventQueue

__all__ = ["AsyncFederated", "FedAsync", "FedBuff"]


@dataclass
class _InFlight:
    """A dispatched client: its result is computed at dispatch, delivered at ``done``."""

    client: int
    version: int
    online: bool
    result: CohortResult  # one row


class AsyncFederated(Algorithm):
    """The event-driven core shared by FedBuff and FedAsync; subclasses define :meth:`apply`.

    Parameters
    ----------
    server : FedAvg
        A FedAvg-family algorithm supplying the client task, client states, the weighting and
        the server stage (``server_update``: plain, momentum, Adam, ...).
    clock : SimulatedClock
        Device speeds, links and availability.
    concurrency : int
        Clients training at any time (M).
    buffer_size : int
        Arrivals per server step (K); 1 for FedAsync.
    staleness : callable
        ``S(s)`` on a tensor of staleness values (:mod:`fedsim.systems.staleness`).
    """

    def __init__(self, *, server: FedAvg, clock: SimulatedClock, concurrency: int, buffer_size: int,
                 staleness: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if buffer_size > concurrency:
            raise ValueError(f"buffer_size {buffer_size} exceeds concurrency {concurrency}: the server would wait forever")
        self.server = server
        self.clock = clock
        self.concurrency = concurrency
        self.buffer_size = buffer_size
        self.staleness = staleness
        self.queue: EventQueue[_InFlight] = EventQueue()
        self.versions: dict[int, torch.Tensor] = {}  # start parameters of versions still in flight
        self.dispatches: dict[int, int] = {}  # dispatch calls per model version
        self.owed = 0  # free slots to fill at the start of the next server step

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, state: ServerState, count: int, version: int, runtime: Runtime) -> None:
        """Start ``count`` idle, online clients on the model of ``version``, trained together."""
        busy = {item.client for item in self.queue.items()}
        pool = [c for c in self.clock.online_clients(self.server.num_clients) if c not in busy]
        # the first dispatch of a version draws from FedAvg's stream of that round; replacements
        # for dropped clients from further streams of the same version
        extra = self.dispatches.get(version, 0)
        self.dispatches[version] = extra + 1
        gen = torch_generator(self.server.seed, "sampling", version, *([extra] if extra else []))
        cohort = sorted(pool[i] for i in uniform_sample(len(pool), min(count, len(pool)), gen))
        if not cohort:
            return
        self.versions[version] = state.params.clone()
        result = self.server.train_cohort(state, cohort, version, runtime, store_states=False)
        times, online = self.clock.task_times(result, self.server.round_task(version).local, state.params.numel())
        for row, client in enumerate(cohort):
            item = _InFlight(client, version, bool(online[row]), result.select([row]))
            self.queue.push(self.clock.now + float(times[row]), item)

    # ------------------------------------------------------------------ a server step
    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        if len(self.queue) == 0 and not self.owed:
            self.owed = self.concurrency  # the start, or every client was dropped
        if self.owed:  # the slots freed by the last step, filled lazily: no cohort trained after the run's end
            self.dispatch(state, self.owed, rnd, runtime)
            self.owed = 0
        arrived: list[_InFlight] = []
        dropped = 0
        while len(arrived) < self.buffer_size and len(self.queue):
            time, item = self.queue.pop()
            self.clock.now = time
            if item.online:
                arrived.append(item)
                self.server.client_states.put(item.client, item.result.states[0])
            else:  # went offline mid-task: its slot frees, a replacement starts on the current model
                dropped += 1
                self.dispatch(state, 1, rnd, runtime)
        if not arrived:
            return RoundMetrics(clients=0, train_loss=float("nan"), bytes_up=0, bytes_down=0,
                                extra={"sim_time_s": self.clock.now, "clients_dropped": dropped, "clients_stale": 0})
        arrived.sort(key=lambda a: a.client)  # the buffer is a set: aggregate it in client-id order
        batch = CohortResult.concat([a.result for a in arrived])
        stale = torch.tensor([rnd - a.version for a in arrived])
        weights = aggregation_weights(batch.num_samples, self.server.weighting)
        state.params = self.apply(state, batch, weights, stale, [self.versions[a.version] for a in arrived], rnd)
        self.owed = len(arrived)
        self._forget_versions()
        self.dispatches = {v: n for v, n in self.dispatches.items() if v > rnd}
        return RoundMetrics(
            clients=len(arrived),
            train_loss=float(weights @ batch.train_loss.double()),
            bytes_up=int(batch.bits_up.sum()) // 8,
            bytes_down=len(arrived) * state.params.numel() * FLOAT_BITS // 8,
            extra={"sim_time_s": self.clock.now, "clients_dropped": dropped, "clients_stale": int((stale > 0).sum())},
        )

    def apply(self, state: ServerState, batch: CohortResult, weights: torch.Tensor, staleness: torch.Tensor,
              starts: list[torch.Tensor], rnd: int) -> torch.Tensor:
        """The new global parameters from the arrived updates."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The server's client states, the clock and every client in flight (plain tensors and numbers)."""
        flight = []
        while len(self.queue):  # popping keeps the queue's order; pushing back restores it
            time, item = self.queue.pop()
            r = item.result
            flight.append({"time": time, "client": item.client, "version": item.version, "online": item.online,
                           "update": r.updates[0].cpu(), "num_samples": r.num_samples, "train_loss": r.train_loss,
                           "bits_up": r.bits_up, "steps": r.steps, "state": r.states[0]})
        for entry in flight:
            self.load_in_flight(entry)
        return {**self.server.state_dict(), "clock": self.clock.state_dict(), "in_flight": flight,
                "versions": dict(self.versions), "dispatches": dict(self.dispatches), "owed": self.owed}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.server.load_state_dict(sd)
        self.clock.load_state_dict(sd["clock"])
        self.queue = EventQueue()
        for entry in sd["in_flight"]:
            self.load_in_flight(entry)
        self.versions = dict(sd["versions"])
        self.dispatches = dict(sd["dispatches"])
        self.owed = int(sd["owed"])

    def load_in_flight(self, entry: dict) -> None:
        result = CohortResult([entry["client"]], entry["update"][None], entry["num_samples"], entry["train_loss"],
                              entry["bits_up"], entry["steps"], [entry["state"]])
        self.queue.push(entry["time"], _InFlight(entry["client"], entry["version"], entry["online"], result))

    def _forget_versions(self) -> None:
        live = {item.version for item in self.queue.items()}
        self.versions = {v: p for v, p in self.versions.items() if v in live}


class FedBuff(AsyncFederated):
    """FedBuff: the server stage on ``sum_k p_k S(s_k) Delta_k`` over a buffer of K arrivals.

    With ``buffer_size == concurrency`` equal to the cohort size, equal speeds and always-online
    clients every buffer is one synchronous cohort with staleness 0, and FedBuff is FedAvg.
    """

    def apply(self, state, batch, weights, staleness, starts, rnd):
        # the staleness factors scale the updates, then the server's aggregate stage (a robust
        # rule, say) combines them: sum_k p_k S(s_k) Delta_k for the default mean
        scale = self.staleness(staleness).to(batch.updates)
        delta = self.server.aggregate(dataclasses.replace(batch, updates=batch.updates * scale[:, None]), weights, rnd)
        return state.params if delta is None else self.server.server_update(state, delta, rnd)


class FedAsync(AsyncFederated):
    """FedAsync: ``x <- x + alpha S(s) (x_tau + Delta_k - x)`` for each arrival, in arrival order.

    Parameters
    ----------
    alpha : float
        The mixing hyperparameter in (0, 1].
    **kwargs
        :class:`AsyncFederated`'s arguments; ``buffer_size`` is 1.
    """

    def __init__(self, *, alpha: float, **kwargs) -> None:
        super().__init__(buffer_size=1, **kwargs)
        self.alpha = alpha

    def apply(self, state, batch, weights, staleness, starts, rnd):
        x = state.params
        mix = self.alpha * self.staleness(staleness)
        for k in range(len(batch.clients)):
            x_k = starts[k].to(x.device) + batch.updates[k].to(x.device)
            x = x + float(mix[k]) * (x_k - x)
        return x
