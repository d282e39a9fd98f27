"""Client participation: which clients take part in a round.

Three rules, each a frozen dataclass called with ``(num_clients, generator)``:
uniform sampling without replacement (McMahan et al. 2017), Poisson sampling where every client
joins independently with probability q (the sampling that DP amplification-by-subsampling
accounting assumes: Abadi et al. 2016; Mironov, Talwar and Zhang 2019), and full participation.
Cohorts are returned in ascending client id, as runtimes expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = [
    "FullParticipation",
    "Participation",
    "PoissonSampling",
    "UniformSampling",
    "full_participation",
    "poisson_sample",
    "uniform_sample",
]


class Participation(Protocol):
    """A participation rule: the round's cohort, and its expected size (which DP accounting needs)."""

    def __call__(self, num_clients: int, generator: torch.Generator) -> list[int]:
        """The cohort (ascending client ids) drawn with ``generator``; it may be empty."""
        ...

    def expected_size(self, num_clients: int) -> float:
        """``E|S_t|`` among ``num_clients`` clients (``q K`` under Poisson sampling)."""
        ...


def uniform_sample(num_clients: int, clients_per_round: int, generator: torch.Generator) -> list[int]:
    """``clients_per_round`` distinct clients uniformly at random (without replacement), ascending."""
    return sorted(torch.randperm(num_clients, generator=generator)[:clients_per_round].tolist())


def poisson_sample(num_clients: int, rate: float, generator: torch.Generator) -> list[int]:
    """Each client independently with probability ``rate`` (q); the cohort size is Binomial(K, q) and may be 0."""
    return torch.nonzero(torch.rand(num_clients, generator=generator, dtype=torch.float64) < rate).flatten().tolist()


def full_participation(num_clients: int) -> list[int]:
    """Every client, every round (parallel SGD, spec eq. 255)."""
    return list(range(num_clients))


@dataclass(frozen=True)
class UniformSampling:
    """``clients_per_round`` clients uniformly without replacement."""

    clients_per_round: int

    def __call__(self, num_clients: int, generator: torch.Generator) -> list[int]:
        return uniform_sample(num_clients, self.clients_per_round, generator)

    def expected_size(self, num_clients: int) -> float:
        return float(self.clients_per_round)


@dataclass(frozen=True)
class PoissonSampling:
    """Each client independently with probability ``rate`` in (0, 1]."""

    rate: float

    def __call__(self, num_clients: int, generator: torch.Generator) -> list[int]:
        return poisson_sample(num_clients, self.rate, generator)

    def expected_size(self, num_clients: int) -> float:
        return self.rate * num_clients


@dataclass(frozen=True)
class FullParticipation:
    """All clients every round."""

    def __call__(self, num_clients: int, generator: torch.Generator) -> list[int]:
        return full_participation(num_clients)

    def expected_size(self, num_clients: int) -> float:
        return float(num_clients)
