"""The simulated clock: deadlines for synchronous rounds and a deterministic event queue.

Synchronous rounds end at a deadline or when the fastest ``m`` of an over-selected cohort have
reported (Bonawitz et al. 2019, section 4.2: the server selects 130% of the target and keeps the
first reports). Asynchronous algorithms process client completions in time order from
:class:`EventQueue`, whose ties are broken by insertion order, so a run is a deterministic
function of its seed.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

__all__ = ["EventQueue", "deadline_outcome", "steps_within"]

T = TypeVar("T")


def deadline_outcome(
    times: torch.Tensor, *, deadline_s: float | None = None, wait_for: int | None = None
) -> tuple[torch.Tensor, float]:
    """Which clients of a synchronous round are kept, and how long the round lasts.

    Parameters
    ----------
    times : Tensor
        ``(C,)`` task times of the cohort's clients (seconds), in cohort order.
    deadline_s : float or None
        Reports after this many seconds are dropped; the server waits at most this long.
    wait_for : int or None
        Keep only the first ``wait_for`` reports (ties broken by cohort position) and close the
        round at the last of them.

    Returns
    -------
    kept : Tensor
        ``(C,)`` bool mask of the clients whose updates are aggregated.
    duration : float
        The round's simulated length: the last kept report, or the deadline when it cut someone.
    """
    kept = torch.ones(len(times), dtype=torch.bool)
    if deadline_s is not None:
        kept &= times <= deadline_s
    if wait_for is not None and int(kept.sum()) > wait_for:
        order = sorted((float(t), i) for i, t in enumerate(times.tolist()) if kept[i])
        kept = torch.zeros(len(times), dtype=torch.bool)
        kept[[i for _, i in order[:wait_for]]] = True
    if len(times) == 0:
        return kept, 0.0
    if deadline_s is not None and not bool(kept.all()) and (wait_for is None or int(kept.sum()) < wait_for):
        return kept, float(deadline_s)
    return kept, float(times[kept].max()) if bool(kept.any()) else float(times.max())


def steps_within(budget_s: torch.Tensor, speed: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Local steps of ``batch_size`` samples that fit into ``budget_s`` seconds of compute (>= 0)."""
    return torch.clamp(torch.floor(budget_s * speed / batch_size), min=0).long()


@dataclass(order=True)
class _Event(Generic[T]):
    time: float
    seq: int
    item: T = field(compare=False)


class EventQueue(Generic[T]):
    """A priority queue of ``(time, item)``; equal times pop in insertion order."""

    def __init__(self) -> None:
        self._heap: list[_Event[T]] = []
        self._seq = 0

    def push(self, time: float, item: T) -> None:
        if not math.isfinite(time):
            raise ValueError(f"event time must be finite, got {time}")
        heapq.heappush(self._heap, _Event(time, self._seq, item))
        self._seq += 1

    def pop(self) -> tuple[float, T]:
        event = heapq.heappop(self._heap)
        return event.time, event.item

    def peek_time(self) -> float:
        return self._heap[0].time

    def items(self) -> list[T]:
        """The queued items, in no particular order."""
        return [event.item for event in self._heap]

    def __len__(self) -> int:
        return len(self._heap)
