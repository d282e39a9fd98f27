"""DP-SGD client work: the client's part of a lot, each example's gradient clipped to l2 norm C,
and the sum of the clipped gradients (Abadi et al. 2016, https://arxiv.org/abs/1607.00133,
Algorithm 1, the "compute gradient" and "clip gradient" lines; the trusted server adds the noise
once, to the sum over all clients).

Per-example gradients come from ``torch.func.vmap`` over ``torch.func.grad``. The lot is drawn
from seeded streams only, so a client's reply is a pure function of (seed, round, client) and is
the same on every runtime: a Poisson lot from the client's own ``"dp_lot"`` stream, or its slice
of one fixed-size lot drawn without replacement from all n examples with the round's shared
``(seed, "dp_lot", round)`` stream (every client derives the same lot, so no message is needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.func import grad, vmap

from fedsim.client.local import LocalSGD
from fedsim.client.task import FLOAT_BITS, ClientContext, ClientResult, ClientTask
from fedsim.models.functional import FunctionalModel
from fedsim.privacy.analysis import cohort_size
from fedsim.privacy.clipping import clip_l2
from fedsim.seeding import torch_generator

__all__ = ["ClippedGradientSumTask", "fixed_lot", "per_sample_grads"]


def per_sample_grads(
    model: FunctionalModel, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, d)`` gradients of each example's loss at the flat ``params`` (torch.func vmap of grad).

    ``noise``: a noise model's forward noise, one row per example.
    """
    if noise is not None:
        def noisy_one(p: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor, zi: torch.Tensor) -> torch.Tensor:
            return model.loss(p, xi.unsqueeze(0), yi.unsqueeze(0), noise=zi.unsqueeze(0))

        return vmap(grad(noisy_one), in_dims=(None, 0, 0, 0))(params, x, y, noise)

    def loss_one(p: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return model.loss(p, xi.unsqueeze(0), yi.unsqueeze(0))

    return vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)


def fixed_lot(sample_rate: float, sizes: tuple[int, ...], generator: torch.Generator) -> list[torch.Tensor]:
    """Per-client masks of one lot of round(q n) examples drawn without replacement from all n."""
    n = sum(sizes)
    lot = torch.randperm(n, generator=generator)[: cohort_size(sample_rate, n)]
    chosen = torch.zeros(n, dtype=torch.bool)
    chosen[lot] = True
    return list(torch.split(chosen, list(sizes)))


@dataclass(frozen=True)
class ClippedGradientSumTask(ClientTask):
    """The client sends ``sum_{i in lot} clip_C(grad f_i(w))``, its lot size as its sample count,
    and the lot's mean loss.

    A client whose part of the lot is empty sends zeros, a sample count of 0 and a NaN loss. This
    is not local SGD, so batched runtimes run it client by client (``vectorizable`` false) and
    ``local`` is unused.

    Parameters
    ----------
    sample_rate : float (default: 1.0)
        q, each example's probability of joining the lot (Poisson) or the lot's share of all n.
    clip_norm : float (default: 1.0)
        C, the per-example gradient l2 bound.
    lot_sizes : tuple of int or None (default: None)
        None: Poisson lots. Otherwise every client's example count, in client order: the lot is
        round(q n) examples drawn without replacement from all of them.
    """

    local: LocalSGD = LocalSGD(lr=1.0, batch_size=1, steps=1)
    sample_rate: float = 1.0
    clip_norm: float = 1.0
    lot_sizes: tuple[int, ...] | None = None

    vectorizable: ClassVar[bool] = False

    def members(self, num_samples: int, ctx: ClientContext) -> torch.Tensor:
        """Which of the client's ``num_samples`` examples are in this round's lot (a bool mask)."""
        if self.lot_sizes is None:
            return torch.rand(num_samples, generator=ctx.generator("dp_lot")) < self.sample_rate
        return fixed_lot(self.sample_rate, self.lot_sizes, torch_generator(ctx.seed, "dp_lot", ctx.rnd))[ctx.client]

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
        members = self.members(len(y), ctx).to(y.device)
        bits = FLOAT_BITS * params.numel()
        if not bool(members.any()):
            return ClientResult(torch.zeros_like(params), 0, float("nan"), bits, 0, state)
        xb, yb = x[members], y[members]
        noise = model.draw_noise(len(yb), ctx.generator("forward_noise"), xb)
        total = clip_l2(per_sample_grads(model, params, xb, yb, noise), self.clip_norm).sum(0)
        return ClientResult(total, len(yb), float(model.loss(params, xb, yb, noise=noise)), bits, 1, state)
