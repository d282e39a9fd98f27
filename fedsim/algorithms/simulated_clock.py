"""The simulated wall clock of a federation: who is online, how long each task takes, who is late.

The algorithms of the FedAvg family hold an optional :class:`SimulatedClock` and consult it at
three points of a round: sampling (only online clients), local work (with ``partial_work``, each
client's step budget before the deadline) and after training (task times from the exact bytes the
clients reported, then the deadline rule). The time model itself is :mod:`fedsim.systems`.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from fedsim.algorithms.sampling import Participation
from fedsim.client.local import LocalSGD
from fedsim.client.task import FLOAT_BITS
from fedsim.runtimes.base import CohortResult
from fedsim.systems import AlwaysAvailable, Availability, ClientProfiles, deadline_outcome, steps_within, task_times

__all__ = ["SimulatedClock", "samples_processed"]


def samples_processed(num_samples: torch.Tensor, steps: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Samples a client's local SGD touched: full epochs of ``n`` plus full minibatches of the last.

    :func:`~fedsim.client.minibatch_schedule` cuts each epoch's permutation into ``ceil(n / B)``
    minibatches, only the epoch's last one short, so ``s`` steps cover
    ``(s // per_epoch) * n + (s % per_epoch) * B`` samples.
    """
    n = num_samples.long()
    per_epoch = torch.clamp((n + batch_size - 1) // batch_size, min=1)
    return (steps // per_epoch) * n + (steps % per_epoch) * batch_size


class SimulatedClock:
    """Simulated time of a run and the systems model it follows.

    Parameters
    ----------
    profiles : ClientProfiles
        Every client's speed, links and latency.
    client_sizes : Tensor
        ``(K,)`` training samples per client (for the step budgets of ``partial_work``).
    availability : Availability (default: always online)
        When each client is online.
    deadline_s : float or None
        Synchronous rounds drop reports later than this (seconds after the round starts).
    wait_for : int or None
        Synchronous rounds keep the first ``wait_for`` reports (over-selection).
    partial_work : bool (default: False)
        Clients that would miss the deadline run the local steps that fit before it instead.
    """

    def __init__(self, *, profiles: ClientProfiles, client_sizes: torch.Tensor, availability: Availability | None = None,
                 deadline_s: float | None = None, wait_for: int | None = None, partial_work: bool = False) -> None:
        self.profiles = profiles
        self.client_sizes = client_sizes
        self.availability = availability if availability is not None else AlwaysAvailable()
        self.deadline_s = deadline_s
        self.wait_for = wait_for
        self.partial_work = partial_work
        self.now = 0.0

    # ------------------------------------------------------------------ sampling
    def online_clients(self, num_clients: int) -> list[int]:
        """Ids of the clients online now, ascending."""
        return torch.nonzero(self.availability.online(torch.arange(num_clients), self.now)).flatten().tolist()

    def sample(self, participation: Participation, num_clients: int,
               generator: torch.Generator) -> list[int]:
        """``participation`` applied to the online clients (all of them: the unrestricted draw)."""
        pool = self.online_clients(num_clients)
        if len(pool) == num_clients:
            return participation(num_clients, generator)
        return sorted(pool[i] for i in participation(len(pool), generator))

    # ------------------------------------------------------------------ time of a task
    def task_times(self, result: CohortResult, local: LocalSGD, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each client's task time (seconds) and whether it stays online until the task ends."""
        clients = torch.tensor(result.clients)
        samples = samples_processed(result.num_samples, result.steps, local.batch_size)
        down = torch.full((len(clients),), dim * FLOAT_BITS // 8, dtype=torch.int64)
        times = task_times(self.profiles, clients, samples, torch.div(result.bits_up, 8, rounding_mode="floor"), down)
        online = self.availability.online_through(clients, self.now, self.now + times)
        return times, online

    def within_deadline(self, locals_: list[LocalSGD], cohort: list[int], dim: int) -> list[LocalSGD]:
        """With ``partial_work``: each client's local SGD cut to the steps it finishes before the deadline.

        The compute budget is the deadline less the download, a dense float32 upload and the
        latency (a compressed upload only shortens the real time, so no step counted here is
        lost). Without ``partial_work`` (or a deadline) ``locals_`` is returned unchanged.
        """
        if not self.partial_work or self.deadline_s is None:
            return locals_
        idx = torch.tensor(cohort)
        p = self.profiles
        comm = dim * FLOAT_BITS / 8 * (1 / p.uplink[idx] + 1 / p.downlink[idx]) + p.latency[idx]
        out = []
        for local, client, budget in zip(locals_, cohort, (self.deadline_s - comm).tolist()):
            fits = int(steps_within(torch.tensor(budget), p.speed[client], local.batch_size))
            full = _full_steps(int(self.client_sizes[client]), local)
            out.append(local if fits >= full else dataclasses.replace(local, steps=max(fits, 0)))
        return out

    # ------------------------------------------------------------------ end of a synchronous round
    def close_round(self, result: CohortResult, local: LocalSGD, dim: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Advance the clock over a synchronous round; the mask of kept clients and the round's metrics."""
        times, online = self.task_times(result, local, dim)
        kept, duration = deadline_outcome(times, deadline_s=self.deadline_s, wait_for=self.wait_for)
        kept &= online & (result.steps > 0)  # a client that finished no step has nothing to send
        if not bool(kept.any()) and self.deadline_s is None and len(times):
            duration = float(times.max())  # everyone went offline: the server waited for the last
        self.now += duration
        return kept, {"sim_time_s": self.now, "clients_dropped": int((~kept).sum()), "clients_stale": 0}

    def state_dict(self) -> dict[str, float]:
        return {"now": self.now}

    def load_state_dict(self, sd: dict[str, float]) -> None:
        self.now = float(sd["now"])


def _full_steps(num_samples: int, local: LocalSGD) -> int:
    per_epoch = math.ceil(num_samples / local.batch_size)
    return local.steps if local.steps is not None else local.epochs * per_epoch
