"""Heterogeneous local work: clients doing different numbers of local epochs or steps.

Agents may do different numbers of local steps, E_i > E_j (hardware heterogeneity, stragglers; the
setting of FedProx, Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020). Each client's amount of work is drawn from a discrete
distribution, either once per client (a slow device stays slow) or afresh every round (transient
stragglers). The cohort is then trained in groups of equal work, so every runtime still receives
one :class:`~fedsim.client.ClientTask` per call, and the groups are merged back in client-id order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.runtimes.base import CohortResult
from fedsim.seeding import torch_generator

__all__ = ["LocalWork", "merge_cohort_results", "run_grouped"]


@dataclass(frozen=True)
class LocalWork:
    """A distribution of local work over clients.

    Parameters
    ----------
    unit : {"epochs", "steps"}
        What ``values`` count: local epochs E_i or local SGD steps.
    values : tuple of int
        The possible amounts of work.
    probs : tuple of float or None (default: None)
        Their probabilities (uniform when None); normalised to sum to one.
    per_round : bool (default: True)
        Draw again every round (stragglers) instead of once per client (fixed hardware).
    seed : int (default: 0)
        Root seed; client ``k`` draws from the ``(seed, "local_work", round or 0, k)`` stream.
    """

    unit: str
    values: tuple[int, ...]
    probs: tuple[float, ...] | None = None
    per_round: bool = True
    seed: int = 0

    def draw(self, client: int, rnd: int) -> int:
        """Client ``client``'s local work in round ``rnd``."""
        probs = torch.tensor(self.probs if self.probs is not None else [1.0] * len(self.values), dtype=torch.float64)
        gen = torch_generator(self.seed, "local_work", rnd if self.per_round else 0, client)
        return self.values[int(torch.multinomial(probs, 1, generator=gen))]

    def local_for(self, local: LocalSGD, client: int, rnd: int) -> LocalSGD:
        """``local`` with client ``client``'s drawn epochs or steps of round ``rnd``."""
        amount = self.draw(client, rnd)
        if self.unit == "steps":
            return dataclasses.replace(local, steps=amount)
        return dataclasses.replace(local, epochs=amount, steps=None)


def run_grouped(
    task: ClientTask,
    cohort: Sequence[int],
    locals_: Sequence[LocalSGD],
    states: Sequence[dict[str, torch.Tensor]],
    run: Callable[[ClientTask, list[int], list[dict[str, torch.Tensor]]], CohortResult],
) -> CohortResult:
    """Train ``cohort`` with client ``cohort[i]`` on ``locals_[i]``: one ``run`` per distinct local SGD.

    Every runtime receives one task per call, so clients with equal work still train together.
    """
    groups: dict[LocalSGD, list[int]] = {}
    for pos, local in enumerate(locals_):
        groups.setdefault(local, []).append(pos)
    if len(groups) == 1 and next(iter(groups)) == task.local:
        return run(task, list(cohort), list(states))
    parts = [
        run(task.with_local(local), [cohort[p] for p in positions], [states[p] for p in positions])
        for local, positions in groups.items()
    ]
    return merge_cohort_results(parts)


def merge_cohort_results(parts: Sequence[CohortResult]) -> CohortResult:
    """Join the groups' results and put the rows back in ascending client id."""
    joined = CohortResult.concat(parts)
    return joined.select(sorted(range(len(joined.clients)), key=joined.clients.__getitem__))
