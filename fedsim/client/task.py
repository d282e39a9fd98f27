"""A client's whole round of work: optional gradient correction, local SGD, update transforms.

:class:`ClientTask` is the unit a runtime executes. Algorithms that need more than plain local
SGD (SCAFFOLD's control variates, clipping for DP, compression with error feedback) subclass it or
add transforms; runtimes only ever call :func:`train_client` (one client) or reproduce its
steps batched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import torch

from fedsim.client.local import LocalSGD, local_sgd
from fedsim.models.functional import FunctionalModel
from fedsim.params import FLOAT_BITS
from fedsim.robustness.training import Objective
from fedsim.seeding import torch_generator

__all__ = ["ClientContext", "ClientResult", "ClientTask", "UpdateTransform", "train_client", "FLOAT_BITS"]

_Task = TypeVar("_Task", bound="ClientTask")


@dataclass(frozen=True)
class ClientContext:
    """Where a client's randomness comes from: every stream is derived from (seed, purpose, round, client)."""

    seed: int
    rnd: int
    client: int

    def generator(self, purpose: str) -> torch.Generator:
        return torch_generator(self.seed, purpose, self.rnd, self.client)


class UpdateTransform(Protocol):
    """A client-side map on the flat update: compression, clipping, ...

    It may read and write entries of the client's ``state`` (an error-feedback residual, say)
    and draws randomness only from ``generator``. It returns the new update and the number of
    bits the client now sends for it.
    """

    def __call__(self, update: torch.Tensor, state: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, int]: ...


@dataclass
class ClientResult:
    """What one client sends back: its (transformed) update ``w_local - w_global`` and bookkeeping."""

    update: torch.Tensor
    num_samples: int
    train_loss: float
    bits_up: int
    steps: int
    state: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientTask:
    """Local SGD followed by the update transforms, in order.

    Parameters
    ----------
    local : LocalSGD
        Local training hyperparameters for this round.
    transforms : tuple of UpdateTransform (default: ())
        Applied in order to the update after local training, each with the client's
        ``"client_transform"`` generator and state.
    objective : Objective or None (default: None)
        A robust training objective (adversarial training, J^1/J^2, tulip) replacing the plain
        minibatch loss; its randomness is the client's ``"objective"`` stream. (A model's own
        forward noise, EnResNet's, is the ``"forward_noise"`` stream.)
    """

    local: LocalSGD
    transforms: tuple[UpdateTransform, ...] = ()
    objective: Objective | None = None

    #: False for a task that replaces plain local SGD (per-sample clipping, say): batched
    #: runtimes then train its clients one by one with :func:`train_client`.
    vectorizable: ClassVar[bool] = True

    def with_local(self: _Task, local: LocalSGD | None = None, **changes: Any) -> _Task:
        """This task (same class) with local SGD ``local`` (default: its own) and ``changes`` to it:
        ``task.with_local(lr=0.01)``, ``task.with_local(prox_mu=mu)``, ``task.with_local(other)``."""
        return dataclasses.replace(self, local=dataclasses.replace(local if local is not None else self.local, **changes))

    def with_transform(self: _Task, transform: UpdateTransform) -> _Task:
        """This task with ``transform`` applied after its own transforms (uplink compression, say)."""
        return dataclasses.replace(self, transforms=(*self.transforms, transform))

    def with_objective(self: _Task, objective: Objective | None) -> _Task:
        """This task with a robust training objective in place of the plain minibatch loss."""
        return dataclasses.replace(self, objective=objective)

    def correction(self, state: dict[str, torch.Tensor], broadcast: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Additive gradient correction for every local step (none for plain local SGD)."""
        return None

    def train(
        self,
        model: FunctionalModel,
        params: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        ctx: ClientContext,
        state: dict[str, torch.Tensor],
        broadcast: dict[str, torch.Tensor],
    ) -> ClientResult:
        """The client's round from ``params`` on its ``(x, y)``: local SGD, then :meth:`finish`.

        A task that is not local SGD (DP-SGD's per-example clipped gradient sum) overrides this
        and sets ``vectorizable`` false; ``state`` is this call's own copy, updated in place.
        """
        local = local_sgd(
            model, params, x, y, self.local, ctx.generator("batches"), self.correction(state, broadcast),
            self.objective, ctx.generator("objective") if self.objective is not None else None,
            ctx.generator("forward_noise") if model.noise_numel else None,
        )
        update, bits = self.finish(local.params - params, local.steps, state, broadcast, ctx.generator("client_transform"))
        return ClientResult(update, len(y), local.loss, bits, local.steps, state)

    def finish(
        self,
        update: torch.Tensor,
        steps: int,
        state: dict[str, torch.Tensor],
        broadcast: dict[str, torch.Tensor],
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, int]:
        """Turn the raw update into what is sent, updating ``state`` in place; return (update, bits)."""
        bits = FLOAT_BITS * update.numel()
        for transform in self.transforms:
            update, bits = transform(update, state, generator)
        return update, bits


def train_client(
    task: ClientTask,
    model: FunctionalModel,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    ctx: ClientContext,
    state: dict[str, torch.Tensor] | None = None,
    broadcast: dict[str, torch.Tensor] | None = None,
) -> ClientResult:
    """One client's round: a pure function of its inputs (``state`` is returned, updated)."""
    return task.train(model, params, x, y, ctx, dict(state or {}), broadcast or {})
