"""When clients are online: always, a diurnal pattern with a per-client phase, or an on/off trace.

Only online clients can be sampled, and a client that goes offline before its task ends is
dropped from the round (Bonawitz et al. 2019, "Towards Federated Learning at Scale", section 2:
devices take part only while idle, charging and on an unmetered network, which follows the
time of day in each device's time zone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from fedsim.errors import FedsimError
from fedsim.seeding import torch_generator
from fedsim.systems.traces import read_trace

__all__ = ["AlwaysAvailable", "Availability", "DiurnalAvailability", "TraceAvailability"]


@runtime_checkable
class Availability(Protocol):
    """Which clients are online at simulated time ``t`` (seconds since the start)."""

    def online(self, clients: torch.Tensor, t: float) -> torch.Tensor:
        """A bool tensor: is each of ``clients`` online at ``t``."""
        ...

    def online_through(self, clients: torch.Tensor, start: torch.Tensor | float, end: torch.Tensor) -> torch.Tensor:
        """A bool tensor: does each client stay online over its whole ``[start, end]``."""
        ...


@dataclass(frozen=True)
class AlwaysAvailable:
    """Every client online at all times (the classical simulation)."""

    def online(self, clients: torch.Tensor, t: float) -> torch.Tensor:
        return torch.ones(len(clients), dtype=torch.bool)

    def online_through(self, clients: torch.Tensor, start: torch.Tensor | float, end: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(clients), dtype=torch.bool)


@dataclass(frozen=True)
class DiurnalAvailability:
    """Online for ``online_fraction`` of every ``period_s``, with a uniform random phase per client.

    Client ``k`` is online at ``t`` iff ``frac(t / period + phase_k) < online_fraction``; the
    phases come from the ``(seed, "availability_phase")`` stream.
    """

    num_clients: int
    period_s: float = 86400.0
    online_fraction: float = 0.5
    seed: int = 0
    phase: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (0 < self.online_fraction <= 1) or not (math.isfinite(self.period_s) and self.period_s > 0):
            raise FedsimError("systems.availability: diurnal needs period_s > 0 and 0 < online_fraction <= 1")
        gen = torch_generator(self.seed, "availability_phase")
        object.__setattr__(self, "phase", torch.rand(self.num_clients, generator=gen, dtype=torch.float64))

    def _position(self, clients: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return torch.remainder(torch.as_tensor(t, dtype=torch.float64) / self.period_s + self.phase[clients.long()], 1.0)

    def online(self, clients: torch.Tensor, t: float) -> torch.Tensor:
        return self._position(clients, t) < self.online_fraction

    def online_through(self, clients: torch.Tensor, start: torch.Tensor | float, end: torch.Tensor) -> torch.Tensor:
        pos = self._position(clients, start)
        if self.online_fraction >= 1:
            return torch.ones(len(clients), dtype=torch.bool)
        remaining = (self.online_fraction - pos) * self.period_s  # seconds until the client goes offline
        return (pos < self.online_fraction) & (end - torch.as_tensor(start, dtype=torch.float64) <= remaining)


@dataclass(frozen=True)
class TraceAvailability:
    """Online intervals ``[start, end)`` per client, read from a CSV ``client,start,end``.

    A client with no row is never online. The intervals are kept as flat tensors so that a query
    over the whole population is one vectorized comparison.
    """

    owner: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor

    @classmethod
    def from_csv(cls, path: str | Path, num_clients: int) -> "TraceAvailability":
        rows = read_trace(path, ("client", "start", "end"), "systems.availability.trace")
        owner, start, end = [], [], []
        for line, row in enumerate(rows, start=2):
            try:
                c, s, e = int(row["client"]), float(row["start"]), float(row["end"])
            except (TypeError, ValueError):
                raise FedsimError(f"systems.availability.trace: {path} line {line}: not a number") from None
            if not 0 <= c < num_clients or not (s < e):
                raise FedsimError(
                    f"systems.availability.trace: {path} line {line}: need 0 <= client < {num_clients} and start < end")
            owner.append(c)
            start.append(s)
            end.append(e)
        return cls(torch.tensor(owner), torch.tensor(start, dtype=torch.float64), torch.tensor(end, dtype=torch.float64))

    def _any_interval(self, clients: torch.Tensor, covers: torch.Tensor) -> torch.Tensor:
        # covers: (C, I) whether interval i covers client c's query; keep only the client's own intervals
        own = clients.long()[:, None] == self.owner[None, :]
        return (own & covers).any(dim=1)

    def online(self, clients: torch.Tensor, t: float) -> torch.Tensor:
        covers = (self.start[None, :] <= t) & (t < self.end[None, :])
        return self._any_interval(clients, covers.expand(len(clients), -1))

    def online_through(self, clients: torch.Tensor, start: torch.Tensor | float, end: torch.Tensor) -> torch.Tensor:
        s = torch.as_tensor(start, dtype=torch.float64).expand(len(clients))[:, None]
        covers = (self.start[None, :] <= s) & (end.double()[:, None] <= self.end[None, :])
        return self._any_interval(clients, covers)
