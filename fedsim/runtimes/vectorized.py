"""The vectorized runtime: a whole cohort trains at once, one batched step per local step.

Client ``c``'s parameters are row ``c`` of a ``(C, d)`` matrix. Every local step gathers each
client's minibatch into a ``(C, B, ...)`` tensor with one indexing operation on the device-resident
training set, evaluates the per-client logits with ``torch.func.vmap`` over the model, and takes
one autograd pass (clients are independent, so the gradient of the summed losses is the stack of
per-client gradients) with respect to per-tensor views of the matrix. The step itself is
:func:`~fedsim.client.local.affine_step_` (in place, tensor by tensor; :func:`~fedsim.client.sgd_step`
when clipping needs whole rows), which is elementwise.

Minibatches come from :func:`~fedsim.client.minibatch_schedule` with each client's own
``(seed, "batches", round, client)`` generator, exactly as in the serial runtime, so both runtimes
see the same samples in the same order and agree to float tolerance. Unequal client sizes: a
minibatch slot past a client's last sample has weight zero (the mean loss is over the real
samples only), and clients are ordered by step count so that those still training at a step are a
prefix of the rows, the only ones computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call, vmap

from fedsim.client.local import affine_coefficients, affine_step_, objective_noise, schedule_shape, sgd_step
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.data.federated import FederatedData
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel, cross_entropy_per_sample
from fedsim.robustness.training import Objective
from fedsim.runtimes.base import CohortResult
from fedsim.runtimes.serial import SerialRuntime
from fedsim.seeding import torch_generators

__all__ = ["CONV_MODES", "CohortSchedule", "VectorizedRuntime", "cohort_schedule"]

#: How the vectorized runtime evaluates a model with convolutions or a recurrence: ``vmap`` (grouped
#: convolution; a batched time loop), ``unfold`` (im2col + batched matmul; convolutions only),
#: ``per_client`` (client by client, as the serial runtime), ``auto`` (per_client on CPU, vmap elsewhere).
CONV_MODES = ("auto", "vmap", "unfold", "per_client")


@dataclass
class CohortSchedule:
    """Every local step's minibatch for a cohort, padded to a common shape.

    ``index[c, s, b]`` is the training-set row of slot ``b`` of client ``c``'s step ``s``;
    ``valid[c, s, b]`` says whether that slot holds a real sample (padded slots point at row 0
    and carry weight zero); ``steps[c]`` is the number of steps client ``c`` takes.
    """

    index: torch.Tensor  # (C, S, B) int64
    valid: torch.Tensor  # (C, S, B) bool
    steps: torch.Tensor  # (C,) int64


def cohort_schedule(task: ClientTask, data: FederatedData, cohort: Sequence[int], seed: int, rnd: int) -> CohortSchedule:
    """Each client's :func:`minibatch_schedule` (its own ``"batches"`` stream), as padded tensors.

    The clients' generators are seeded in one pass (:func:`~fedsim.seeding.torch_generators`)
    and the only per-client work left is drawing their permutations; cutting them into padded
    ``(C, S, B)`` minibatches is index arithmetic on the whole cohort.
    """
    local = task.local
    batch = local.batch_size
    sizes = [data.client_indices[c].shape[0] for c in cohort]
    generators = torch_generators(seed, "batches", rnd, np.asarray(list(cohort), dtype=np.int64))
    perms: list[torch.Tensor] = []
    epochs, steps = [], []
    for size, gen in zip(sizes, generators):
        drawn, taken = schedule_shape(size, local)
        perms.extend(torch.randperm(size, generator=gen) for _ in range(drawn))
        epochs.append(drawn)
        steps.append(taken)
    num_steps = max(steps, default=0)
    if num_steps == 0:
        empty = torch.zeros((len(cohort), 0, batch), dtype=torch.long)
        return CohortSchedule(empty, empty.bool(), torch.tensor(steps, dtype=torch.long))
    n = torch.tensor(sizes, dtype=torch.long)[:, None, None]
    e = torch.tensor(epochs, dtype=torch.long)[:, None, None]
    steps_t = torch.tensor(steps, dtype=torch.long)
    per_epoch = (n + batch - 1) // batch
    s = torch.arange(num_steps)[None, :, None]
    b = torch.arange(batch)[None, None, :]
    epoch, j = s // per_epoch.clamp_min(1), s % per_epoch.clamp_min(1)
    within = j * batch + b  # position inside the epoch's permutation
    valid = (s < steps_t[:, None, None]) & (within < n)
    # Client c's epoch k permutation starts at perm_start[c] + k * n[c] in the concatenation.
    perm_start = torch.cumsum(e * n, 0) - e * n
    flat = torch.cat(perms)
    local_idx = flat[torch.where(valid, perm_start + epoch * n + within, 0)]
    rows = torch.cat([data.client_indices[c] for c in cohort]).cpu()
    row_start = torch.cumsum(n, 0) - n
    index = torch.where(valid, rows[torch.where(valid, row_start + local_idx, 0)], 0)
    return CohortSchedule(index, valid, steps_t)


class VectorizedRuntime(SerialRuntime):
    """Trains up to ``max_clients`` clients at once with ``torch.func.vmap`` (larger cohorts in chunks).

    Data and model move to ``device`` once, at construction. Client-side pieces that are not
    elementwise (the task's correction and its update transforms: compression, clipping) run per
    client, on that client's row, with the same generators as in the serial runtime. A task
    that replaces local SGD itself (``task.vectorizable`` false) is trained client by client.

    Parameters
    ----------
    model, data, seed
        As for :class:`~fedsim.runtimes.Runtime`.
    device : torch.device or str (default: "cpu")
        Where data, parameters and the batched steps live.
    max_clients : int (default: 256)
        Clients trained in one batched pass; bounds activation memory (CNN: about 2.5 MB per
        client at batch 32).
    conv : str (default: "auto")
        One of :data:`CONV_MODES`: how a model with convolutions or a recurrence is evaluated.
    """

    def __init__(
        self,
        model: FunctionalModel,
        data: FederatedData,
        *,
        seed: int,
        device: torch.device | str = "cpu",
        max_clients: int = 256,
        conv: str = "auto",
        threads: int | None = None,
    ) -> None:
        super().__init__(model, data, seed=seed, device=device, threads=threads)
        self.max_clients = max_clients
        if conv not in CONV_MODES:
            raise FedsimError(f"runtime.conv: unknown mode '{conv}' (allowed: {', '.join(CONV_MODES)})")
        # Convolutions: vmap turns the client dimension into a grouped convolution, which on CPU
        # (1 thread, LeNet CNN, 100 clients) ran 0.75x the speed of one client after another and
        # im2col + bmm 0.48x; a convolutional model therefore trains client by client on CPU.
        if conv == "auto":
            conv = "per_client" if self.device.type == "cpu" else "vmap"
        # The char-LSTM's batched time loop ran 1.19x serial's time on CPU (benchmarks/model_runtimes.py).
        self.conv = conv if self.model.has_convolutions or self.model.has_recurrence else "vmap"
        # Linear layers in the layout whose vmapped gradient needs no transposition (VmapLinear).
        module = self.model.for_vmap(unfold=self.conv == "unfold")
        # Only the forward pass is vmapped; the loss is taken on the stacked (C, B, K) logits
        # outside vmap (a vmapped F.cross_entropy costs a one-time 0.4-0.7 s lazy import inside
        # torch, and is no faster).
        self._cohort_logits = vmap(lambda tensors, x: functional_call(module, tensors, (x,)))
        # A noise model (EnResNet) takes each client's forward-noise batch as a second input.
        self._noisy_logits = vmap(lambda tensors, x, z: functional_call(module, tensors, (x, z)))
        # One client left: the plain module (unbatched BLAS takes transposed operands directly).
        self._module = self.model.with_unfold_convolutions() if self.conv == "unfold" else self.model.module
        self._buffers: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def run_cohort(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> CohortResult:
        params, states, broadcast = self.on_device(params, cohort, states, broadcast)
        base, parts = self.data, []
        self.data = base.for_round(cohort, self.seed, rnd)  # augmented copy of the cohort's samples, if configured
        try:
            for lo in range(0, len(cohort), self.max_clients):
                hi = min(lo + self.max_clients, len(cohort))
                start = params if params.dim() == 1 else params[lo:hi]
                parts.append(self._run_chunk(task, start, list(cohort[lo:hi]), rnd, states[lo:hi], broadcast))
        finally:
            self.data = base
        return parts[0] if len(parts) == 1 else CohortResult.concat(parts)

    def _run_chunk(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: list[int],
        rnd: int,
        states: list[dict[str, torch.Tensor]],
        broadcast: dict[str, torch.Tensor],
    ) -> CohortResult:
        if not task.vectorizable or self.conv == "per_client":
            return super().run_cohort(task, params, cohort, rnd, states, broadcast)
        start = params.expand(len(cohort), -1) if params.dim() == 1 else params
        corrections = [task.correction(s, broadcast) for s in states]
        correction = None
        if any(c is not None for c in corrections):
            correction = torch.stack([c if c is not None else torch.zeros_like(start[0]) for c in corrections])
        final, loss_sum, steps = self._local_sgd(task, start, cohort, rnd, correction)
        raw = final - start
        if type(task).finish is ClientTask.finish and not task.transforms:
            # Plain local SGD sends its raw update: no per-client work (nor generators) needed.
            updates, bits = raw, torch.full((len(cohort),), FLOAT_BITS * raw.shape[1], dtype=torch.int64)
        else:
            generators = torch_generators(self.seed, "client_transform", rnd, np.asarray(cohort, dtype=np.int64))
            sent = [task.finish(raw[i], int(steps[i]), states[i], broadcast, generators[i]) for i in range(len(cohort))]
            updates = torch.stack([u for u, _ in sent])
            bits = torch.tensor([b for _, b in sent], dtype=torch.int64)
        taken = steps.to(loss_sum.dtype)
        train_loss = torch.where(taken > 0, loss_sum / taken.clamp_min(1), torch.full_like(taken, float("nan")))
        return CohortResult(
            clients=cohort,
            updates=updates,
            num_samples=torch.tensor([self.data.client_indices[c].shape[0] for c in cohort], dtype=torch.long),
            train_loss=train_loss,
            bits_up=bits,
            steps=steps.cpu().long(),
            states=states,
        )

    def _one_logits(self, tensors: dict[str, torch.Tensor], xb: torch.Tensor, zb: torch.Tensor | None = None) -> torch.Tensor:
        """``_cohort_logits`` for a cohort of one, without vmap."""
        args = (xb[0],) if zb is None else (xb[0], zb[0])
        return functional_call(self._module, {name: t[0] for name, t in tensors.items()}, args)[None]

    def _gather_buffers(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Minibatch buffers of ``rows`` samples, reused across steps and rounds (no fresh allocation per step)."""
        x, y = self.data.x_train, self.data.y_train
        key = (rows, x.dtype, x.device)
        if key not in self._buffers:
            self._buffers = {key: (x.new_empty((rows, *x.shape[1:])), y.new_empty(rows))}
        return self._buffers[key]

    def _objective_step(
        self,
        objective: Objective,
        w: torch.Tensor,
        xb: torch.Tensor,
        yb: torch.Tensor,
        weight: torch.Tensor,
        noise_gens: list[torch.Generator] | None,
        batch: int,
        forward: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One batched step of a robust objective: ``vmap`` of the same function the serial runtime calls.

        Each client's noise is drawn from its own ``"objective"`` stream exactly as
        :func:`~fedsim.client.local_sgd` draws it (every client draws every step; a client past
        its schedule discards its draw, which no later step of it reads). ``forward``: a noise
        model's ``(C, B, noise_numel)`` forward noise, fixed for the whole objective of each client.
        """
        noise = None
        if noise_gens is not None:
            noise = torch.stack([objective_noise(objective, batch, xb[0], g) for g in noise_gens])  # type: ignore[misc]
        model = self.model
        tensors = {name: w[:, sl].unflatten(1, shape).detach().requires_grad_(True)
                   for name, shape, sl in zip(model.spec.names, model.spec.shapes, model.spec.slices())}
        if forward is not None:
            losses = vmap(lambda tc, xc, yc, wc, zc, fc: objective(model.with_noise(fc), tc, xc, yc, wc, zc),
                          in_dims=(0, 0, 0, 0, None if noise is None else 0, 0))(tensors, xb, yb, weight, noise, forward)
        elif noise is None:
            losses = vmap(lambda tc, xc, yc, wc: objective(model, tc, xc, yc, wc, None))(tensors, xb, yb, weight)
        else:
            losses = vmap(lambda tc, xc, yc, wc, zc: objective(model, tc, xc, yc, wc, zc))(tensors, xb, yb, weight, noise)
        grads = torch.autograd.grad(losses.sum(), tuple(tensors.values()))
        return losses.detach(), grads

    def _local_sgd(
        self, task: ClientTask, start: torch.Tensor, cohort: list[int], rnd: int, correction: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched :func:`~fedsim.client.local_sgd`: final ``(C, d)`` parameters, summed step losses, steps taken."""
        sched = cohort_schedule(task, self.data, cohort, self.seed, rnd)
        num_clients, num_steps, batch = sched.index.shape
        # Clients in descending order of step count, so the clients still training at step s are
        # always a prefix [0, k_s) of the rows: later steps compute only that prefix (views, no
        # masking), and a cohort of unequal clients costs the sum of their steps, as serially.
        order = torch.argsort(sched.steps, descending=True, stable=True)
        # Already in order (equal clients, decentralized nodes): skip the permuting copies.
        permuted = bool((order != torch.arange(num_clients)).any())
        steps_sorted = sched.steps[order]
        prefix = [int(k) for k in (steps_sorted[:, None] > torch.arange(num_steps)).sum(0)]  # k_s per step
        index, valid = (sched.index[order], sched.valid[order]) if permuted else (sched.index, sched.valid)
        index = index.to(self.device)
        weight = valid.to(self.device, start.dtype)
        count = weight.sum(2).clamp_min(1.0)  # (C, S) real samples per minibatch
        if permuted:
            order_dev = order.to(self.device)
            start = start[order_dev]
            correction = None if correction is None else correction[order_dev]
        x, y = self.data.x_train, self.data.y_train
        xbuf, ybuf = self._gather_buffers(num_clients * batch)
        layout = list(zip(self.model.spec.names, self.model.spec.shapes, self.model.spec.slices()))
        in_place = task.local.clip_radius is None
        w = start.clone(memory_format=torch.contiguous_format)
        # In place, the (C, d) matrix is updated tensor by tensor through its views, by the step
        # rule rearranged as w <- a w - eta g + o with o fixed for the round (affine_coefficients):
        # no temporaries per step; clipping needs whole rows.
        offset_views = None
        if in_place:
            decay, offset = affine_coefficients(task.local, start, correction)
            if offset is not None:
                offset_views = [offset[:, sl].unflatten(1, shape) for _, shape, sl in layout]
        weight_views = [w[:, sl].unflatten(1, shape) for _, shape, sl in layout]
        # Each step's loss is the mean over the minibatch's real samples: per-slot weights 1/count.
        scale = weight / count[:, :, None]
        loss_sum = torch.zeros(num_clients, device=self.device, dtype=start.dtype)
        objective = task.objective
        noise_gens = None
        if objective is not None and objective.needs_noise:
            noise_gens = torch_generators(self.seed, "objective", rnd, np.asarray(cohort, dtype=np.int64)[order.numpy()])
        # A noise model's forward noise: each client's "forward_noise" stream, one draw per step it takes, as in local_sgd.
        forward_gens = None
        if self.model.noise_numel:
            forward_gens = torch_generators(self.seed, "forward_noise", rnd, np.asarray(cohort, dtype=np.int64)[order.numpy()])
        k_views = -1
        for s in range(num_steps):
            k = prefix[s]
            if k != k_views:
                # The prefix shrinks a few times per round: its views are built once per size, not per step.
                # Differentiate with respect to per-tensor views of the (C, d) matrix, not the
                # matrix: the backward of slicing a flat leaf zero-fills a full (C, d) gradient
                # per tensor. The leaves share w's storage, so they see every in-place step.
                k_views, wk = k, w[:k]
                tensors = {name: wk[:, sl].unflatten(1, shape).detach().requires_grad_(True) for name, shape, sl in layout}
                targets = [v[:k] for v in weight_views]
                offsets = None if offset_views is None else [o[:k] for o in offset_views]
            # index_select on the flat row list: about twice as fast as advanced indexing on CPU.
            rows = index[:k, s].reshape(-1)
            xb = torch.index_select(x, 0, rows, out=xbuf[: k * batch]).view(k, batch, *x.shape[1:])
            yb = torch.index_select(y, 0, rows, out=ybuf[: k * batch])
            forward = None
            if forward_gens is not None:
                forward = torch.stack([self.model.draw_noise(batch, g, x) for g in forward_gens[:k]])  # type: ignore[misc]
            if objective is not None:
                # A client past its schedule draws no more noise: no later step of it would read it.
                gens = None if noise_gens is None else noise_gens[:k]
                losses, grads = self._objective_step(objective, wk, xb, yb.view(k, batch), weight[:k, s], gens, batch, forward)
            else:
                # One client left (the long tail of a skewed cohort): the plain forward, without
                # vmap's per-operator dispatch, which then costs more than it batches.
                if k == 1:
                    logits = self._one_logits(tensors, xb, forward)
                else:
                    logits = self._cohort_logits(tensors, xb) if forward is None else self._noisy_logits(tensors, xb, forward)
                per_sample = cross_entropy_per_sample(logits.reshape(k * batch, -1), yb)
                losses = (per_sample.view(k, batch) * scale[:k, s]).sum(1)
                grads = torch.autograd.grad(losses.sum(), tuple(tensors.values()))
            if in_place:
                affine_step_(targets, grads, task.local.lr, decay, offsets)
            else:
                grad = torch.cat([g.reshape(k, -1) for g in grads], dim=1)
                w[:k] = sgd_step(wk, grad, start[:k], task.local, None if correction is None else correction[:k])
            loss_sum[:k] += losses.detach()
        if not permuted:
            return w.detach(), loss_sum.cpu(), sched.steps
        inverse = torch.argsort(order).to(self.device)
        return w[inverse].detach(), loss_sum[inverse].cpu(), sched.steps
