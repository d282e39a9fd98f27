"""Local SGD on one client: the minibatch schedule, the step rule and the loop.

The step rule :func:`sgd_step` is elementwise, so the same function updates one client's
``(d,)`` vector or a cohort's ``(C, d)`` matrix; the vectorized runtime reuses it as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fedsim.models.functional import FunctionalModel
from fedsim.privacy.clipping import clip_l2
from fedsim.robustness.training import Objective

__all__ = [
    "LocalSGD", "LocalResult", "affine_coefficients", "affine_step_", "minibatch_schedule", "schedule_shape", "sgd_step", "sgd_step_",
    "local_sgd",
]


@dataclass(frozen=True)
class LocalSGD:
    """Hyperparameters of a client's local training.

    Parameters
    ----------
    lr : float
        Client learning rate eta.
    batch_size : int
        Minibatch size B; the last minibatch of an epoch holds the remainder (no sample dropped or repeated).
    epochs : int (default: 1)
        Local epochs E (passes over the client's data, reshuffled each epoch).
    steps : int or None (default: None)
        A fixed number of local steps instead of epochs (parallel SGD uses 1).
    weight_decay : float (default: 0.0)
        L2 penalty lambda/2 ||w||^2 added to the client objective.
    prox_mu : float (default: 0.0)
        FedProx proximal weight mu: the objective gains mu/2 ||w - w_global||^2 (Li et al. 2020).
    clip_radius : float or None (default: None)
        After every step, project ``w`` onto the l2 ball of this radius around ``w_global``
        (DP-Fed-LS' per-step clipping, as the reference code's ``_project_net``).
    """

    lr: float
    batch_size: int
    epochs: int = 1
    steps: int | None = None
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    clip_radius: float | None = None


@dataclass
class LocalResult:
    params: torch.Tensor
    loss: float
    steps: int


def schedule_shape(num_samples: int, local: LocalSGD) -> tuple[int, int]:
    """(permutations drawn, steps taken) of :func:`minibatch_schedule` for a client of this size."""
    per_epoch = math.ceil(num_samples / local.batch_size)
    if local.steps is None:
        return local.epochs, local.epochs * per_epoch
    if per_epoch == 0:  # a client without data takes no step
        return 0, 0
    return math.ceil(local.steps / per_epoch), local.steps


def minibatch_schedule(num_samples: int, local: LocalSGD, generator: torch.Generator) -> list[torch.Tensor]:
    """Indices (into the client's data) of every local step's minibatch, in order.

    Random reshuffling: one permutation per epoch, cut into consecutive minibatches. With
    ``local.steps`` set, epochs are drawn until that many minibatches exist.
    """
    epochs, steps = schedule_shape(num_samples, local)
    batches: list[torch.Tensor] = []
    for _ in range(epochs):
        batches.extend(torch.randperm(num_samples, generator=generator).split(local.batch_size))
    return batches[:steps]


def sgd_step(
    w: torch.Tensor,
    grad: torch.Tensor,
    w_global: torch.Tensor,
    local: LocalSGD,
    correction: torch.Tensor | None = None,
) -> torch.Tensor:
    """One step ``w - eta (g + lambda w + mu (w - w_global) + c)`` on the client objective.

    ``c`` is an additive gradient correction (SCAFFOLD's ``c - c_i``, Karimireddy et al. 2020, eq. 3).
    """
    direction = grad
    if local.weight_decay:
        direction = direction + local.weight_decay * w
    if local.prox_mu:
        direction = direction + local.prox_mu * (w - w_global)
    if correction is not None:
        direction = direction + correction
    w = w - local.lr * direction
    if local.clip_radius is not None:
        w = w_global + clip_l2(w - w_global, local.clip_radius)
    return w


def objective_noise(objective: Objective | None, batch_size: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor | None:
    """One step's standard-normal ``(batch_size, numel + 1)`` draw for an objective that needs it.

    Always a full ``batch_size`` rows (a short last minibatch uses the first rows), drawn on the
    CPU from the client's ``"objective"`` stream, so every runtime draws the same numbers.
    """
    if objective is None or not objective.needs_noise or generator is None:
        return None
    return torch.randn(batch_size, x[0].numel() + 1, generator=generator, dtype=x.dtype).to(x.device)


def objective_loss_and_grad(
    objective: Objective, model: FunctionalModel, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None,
    forward_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A robust objective's minibatch value and its gradient in the flat parameters.

    ``forward_noise``: a noise model's forward noise for this minibatch, fixed for the whole
    objective (the inner attack sees the same realization as the outer loss).
    """
    # Per-tensor views, as in FunctionalModel.loss_and_grad (no zero-filled full gradient per tensor).
    named = {name: t.detach().requires_grad_(True) for name, t in model.spec.unflatten(w).items()}
    # Objective types params as a flat Tensor; its model (FunctionalModel.logits) also takes per-tensor views.
    loss = objective(model.with_noise(forward_noise), named, x, y, None, None if noise is None else noise[: len(y)])  # type: ignore[arg-type]
    grads = torch.autograd.grad(loss, tuple(named.values()))
    return loss.detach(), torch.cat([g.reshape(-1) for g in grads])


def sgd_step_(
    w: torch.Tensor,
    grad: torch.Tensor,
    w_global: torch.Tensor,
    local: LocalSGD,
    correction: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`sgd_step` in place on ``w``, for rules without clipping (so it also applies tensor by tensor).

    ``mask`` (0/1, broadcast against ``w``) freezes the rows where it is 0: their direction is
    multiplied by 0, so they keep their values exactly. Updating in place saves the batched
    runtime two passes over the ``(C, d)`` matrix per step, which is what bounds it on models
    whose parameters do not fit in cache.
    """
    if local.clip_radius is not None:
        raise ValueError("sgd_step_: clipping needs the whole vector; use sgd_step")
    # Fused adds (one temporary each) rather than scalar products: this runs once per tensor per step.
    direction = grad
    if local.weight_decay:
        direction = direction.add(w, alpha=local.weight_decay)
    if local.prox_mu:
        direction = direction.add(w - w_global, alpha=local.prox_mu)
    if correction is not None:
        direction = direction + correction
    if mask is not None:
        direction = direction * mask
    return w.sub_(direction, alpha=local.lr)


def affine_coefficients(local: LocalSGD, w_global: torch.Tensor, correction: torch.Tensor | None = None) -> tuple[float, torch.Tensor | None]:
    """:func:`sgd_step`'s rule (no clipping) as ``w <- a w - eta g + o``: returns ``a`` and ``o``.

    ``w - eta (g + lambda w + mu (w - w_global) + c) = a w - eta g + o`` with
    ``a = 1 - eta (lambda + mu)`` and ``o = eta (mu w_global - c)``. Within a round ``w_global`` and
    ``c`` are fixed, so ``o`` is computed once (``None`` when it is zero) and every step of
    :func:`affine_step_` runs in place without temporaries (FedProx's proximal term then costs
    one pass instead of two temporaries per tensor per step).
    """
    if local.clip_radius is not None:
        raise ValueError("affine_coefficients: clipping needs the whole vector; use sgd_step")
    decay = 1.0 - local.lr * (local.weight_decay + local.prox_mu)
    offset = (local.lr * local.prox_mu) * w_global if local.prox_mu else None
    if correction is not None:
        offset = -local.lr * correction if offset is None else offset.sub_(correction, alpha=local.lr)
    return decay, offset


def affine_step_(
    ws: list[torch.Tensor], grads: list[torch.Tensor] | tuple[torch.Tensor, ...], lr: float, decay: float, offsets: list[torch.Tensor] | None
) -> None:
    """One :func:`sgd_step` in place on every tensor of ``ws``: ``w <- decay w - lr g + o`` (see :func:`affine_coefficients`)."""
    # One dispatch per operation for all tensors (foreach) rather than one per tensor.
    if decay != 1.0:
        torch._foreach_mul_(ws, decay)
    torch._foreach_add_(ws, list(grads), alpha=-lr)
    if offsets is not None:
        torch._foreach_add_(ws, offsets)


def local_sgd(
    model: FunctionalModel,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    local: LocalSGD,
    generator: torch.Generator,
    correction: torch.Tensor | None = None,
    objective: Objective | None = None,
    noise_generator: torch.Generator | None = None,
    forward_generator: torch.Generator | None = None,
) -> LocalResult:
    """Run local SGD from ``params`` on ``(x, y)``; return the final parameters and the mean minibatch loss.

    With ``objective`` (:mod:`fedsim.robustness.training`), each step descends that objective
    instead of the plain cross-entropy; its randomness comes from ``noise_generator``. A model
    with forward noise (EnResNet) gets a fresh ``(batch_size, noise_numel)`` draw from
    ``forward_generator`` every step (full rows, as :func:`objective_noise`).
    """
    w = params
    losses = []
    for idx in minibatch_schedule(len(y), local, generator):
        idx = idx.to(x.device)
        forward = model.draw_noise(local.batch_size, forward_generator, x)
        forward = None if forward is None else forward[: len(idx)]
        if objective is None:
            loss, grad = model.loss_and_grad(w, x[idx], y[idx], forward)
        else:
            noise = objective_noise(objective, local.batch_size, x, noise_generator)
            loss, grad = objective_loss_and_grad(objective, model, w, x[idx], y[idx], noise, forward)
        w = sgd_step(w, grad, params, local, correction)
        losses.append(loss)
    mean_loss = torch.stack(losses).mean().item() if losses else float("nan")
    return LocalResult(w.detach(), mean_loss, len(losses))
