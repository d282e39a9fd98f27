"""The runtime interface: map a :class:`~fedsim.client.ClientTask` over a cohort."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fedsim.client.task import ClientResult, ClientTask
from fedsim.data.federated import FederatedData
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel

__all__ = ["CohortResult", "Runtime", "resolve_device", "set_threads"]


@dataclass
class CohortResult:
    """A cohort's results, row ``i`` belonging to ``clients[i]`` (ascending client id)."""

    clients: list[int]
    updates: torch.Tensor  # (C, d)
    num_samples: torch.Tensor  # (C,)
    train_loss: torch.Tensor  # (C,)
    bits_up: torch.Tensor  # (C,) int64
    steps: torch.Tensor  # (C,) int64: local SGD steps each client took
    states: list[dict[str, torch.Tensor]]

    @classmethod
    def from_clients(cls, clients: list[int], results: Sequence[ClientResult]) -> "CohortResult":
        """Stack per-client results (in ``clients`` order) into one cohort result."""
        return cls(
            clients=clients,
            updates=torch.stack([r.update for r in results]),
            num_samples=torch.tensor([r.num_samples for r in results]),
            train_loss=torch.tensor([r.train_loss for r in results]),
            bits_up=torch.tensor([r.bits_up for r in results], dtype=torch.int64),
            steps=torch.tensor([r.steps for r in results], dtype=torch.int64),
            states=[r.state for r in results],
        )

    @classmethod
    def empty(cls, like: torch.Tensor) -> "CohortResult":
        """The result of a cohort with no client (an empty Poisson draw): ``(0, d)`` updates like ``like``."""
        return cls(
            clients=[],
            updates=like.new_zeros((0, like.numel())),
            num_samples=torch.zeros(0, dtype=torch.long),
            train_loss=torch.zeros(0),
            bits_up=torch.zeros(0, dtype=torch.int64),
            steps=torch.zeros(0, dtype=torch.int64),
            states=[],
        )

    @classmethod
    def concat(cls, parts: Sequence["CohortResult"]) -> "CohortResult":
        """Join consecutive parts of one cohort (each in client-id order) into one result."""
        return cls(
            clients=[c for p in parts for c in p.clients],
            updates=torch.cat([p.updates for p in parts]),
            num_samples=torch.cat([p.num_samples for p in parts]),
            train_loss=torch.cat([p.train_loss for p in parts]),
            bits_up=torch.cat([p.bits_up for p in parts]),
            steps=torch.cat([p.steps for p in parts]),
            states=[s for p in parts for s in p.states],
        )

    def select(self, rows: Sequence[int]) -> "CohortResult":
        """The rows ``rows`` (positions, ascending) as a cohort result of their own."""
        index = torch.tensor(list(rows), dtype=torch.long)
        return CohortResult(
            clients=[self.clients[i] for i in rows],
            updates=self.updates[index.to(self.updates.device)],
            num_samples=self.num_samples[index],
            train_loss=self.train_loss[index],
            bits_up=self.bits_up[index],
            steps=self.steps[index],
            states=[self.states[i] for i in rows],
        )


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count for this process; ``None`` leaves it as it is.

    A process-wide side effect, so only runtimes call it (each in the process it trains in).
    """
    if threads is not None:
        torch.set_num_threads(threads)


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FedsimError(f"runtime.device: '{device}' requested but CUDA is not available (allowed here: auto, cpu)")
    return dev


class Runtime(ABC):
    """Executes client work for an algorithm.

    Parameters
    ----------
    model : FunctionalModel
        The model architecture, evaluated at flat parameter vectors.
    data : FederatedData
        The federated training set; a runtime may move it to its device once.
    seed : int
        Root seed; client streams derive from (seed, purpose, round, client).
    """

    def __init__(self, model: FunctionalModel, data: FederatedData, *, seed: int) -> None:
        self.model = model
        self.data = data
        self.seed = seed

    @abstractmethod
    def run_cohort(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> CohortResult:
        """Train ``cohort`` (ascending ids) from ``params``.

        ``params`` is one ``(d,)`` vector broadcast to every client, or a ``(C, d)`` matrix with
        one start point per client (decentralized nodes). ``states`` are the clients' states in
        cohort order; the result carries the updated ones.
        """

    def close(self) -> None:
        """Release processes or devices held by the runtime."""
