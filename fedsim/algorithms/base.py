"""The algorithm contract: an algorithm owns its server state and runs one round at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from fedsim.runtimes.base import Runtime

__all__ = ["Algorithm", "RoundMetrics", "ServerState"]


@dataclass
class ServerState:
    """Global parameters plus whatever else the rule keeps (optimizer moments, control variates)."""

    params: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def state_dict(self) -> dict[str, Any]:
        return {"params": self.params, "extras": dict(self.extras)}

    @classmethod
    def from_state_dict(cls, sd: dict[str, Any]) -> "ServerState":
        return cls(sd["params"], dict(sd["extras"]))


@dataclass
class RoundMetrics:
    """What a round reports; the experiment adds evaluation and wall time."""

    clients: int
    train_loss: float
    bytes_up: int
    bytes_down: int
    extra: dict[str, float] = field(default_factory=dict)


class Algorithm(ABC):
    """A training rule: ``init`` once, then ``round`` repeatedly."""

    def init(self, params: torch.Tensor) -> ServerState:
        return ServerState(params.clone())

    @abstractmethod
    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        """Run round ``rnd`` (0-based), updating ``state`` in place."""

    def stop_reason(self, rnd: int) -> str | None:
        """Why the run must stop before round ``rnd`` (a spent privacy budget, say); None to go on."""
        return None

    def eval_params(self, state: ServerState) -> torch.Tensor:
        """The parameters whose test accuracy is reported."""
        return state.params

    def evaluate_extra(self, state: ServerState, evaluate: Callable[[torch.Tensor], tuple[float, float]]) -> dict[str, float]:
        """Test metrics beyond those of :meth:`eval_params` (per-node accuracies), on evaluation rounds."""
        return {}

    def summary(self) -> dict[str, object]:
        """Entries the algorithm adds to ``summary.json`` (a privacy ledger, compression totals)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Algorithm-side state beyond ServerState (client states), for checkpoints."""
        return {}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
