"""DP-SGD and DP-LSSGD: sample-level private parallel SGD with optional Laplacian smoothing.

DP-SGD: Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar and Zhang, "Deep Learning with
Differential Privacy", CCS 2016, https://arxiv.org/abs/1607.00133. DP-LSSGD: Wang, Gu, Boedihardjo,
Wang, Barekat and Osher, "DP-LSSGD: A Stochastic Optimization Method to Lift the Utility in
Privacy-Preserving ERM", https://arxiv.org/abs/1906.12056:

    w^{t+1} = w^t - eta_t A_sigma^{-1} ( (1/(q n)) (sum_{i in B_t} clip_C(grad f_i(w^t)) + N(0, (z C)^2 I)) )

Every example of every client joins the lot B_t independently with probability q (``poisson``:
Opacus' accounting is exact), or the lot is a fixed q n examples drawn without replacement from
all n (``uniform``: accounted by dp-accounting under replace-one adjacency, an RDP upper bound).
Each gradient is clipped to norm C, the trusted server adds noise once to the sum, divides by
the expected lot size q n, smooths (post-processing) and steps.
sigma = 0 is DP-SGD. All clients take part in every round (parallel SGD with full
participation), so the privacy unit is one training example and q is the only subsampling.
The lot, the per-example gradients and their clipping are client work
(:class:`~fedsim.client.per_sample.ClippedGradientSumTask`) run through ``run_cohort``, so
DP-LSSGD runs serially, vectorized, on Ray and on Flower alike; the server adds the clients'
sums, noises, smooths and steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.dp_fed_ls import Smoothing, budget_stop_reason, privacy_summary
from fedsim.client.per_sample import ClippedGradientSumTask, per_sample_grads
from fedsim.errors import FedsimError
from fedsim.privacy.accountant import PrivacyAccountant
from fedsim.privacy.mechanism import add_gaussian_noise
from fedsim.runtimes.base import CohortResult, Runtime
from fedsim.seeding import torch_generator

__all__ = ["per_sample_grads", "DPLSSGD"]


class DPLSSGD(Algorithm):
    """DP-LSSGD (sigma > 0) and DP-SGD (sigma = 0) with sample-level accounting.

    Parameters
    ----------
    lr : float
        Step size eta (eta / (t + 1) with ``lr_decay="inverse"``, a step size 1/t).
    sample_rate : float
        q: each example's probability of joining a round's lot (expected lot size q n).
    noise_multiplier : float
        z: the noise on the sum of clipped per-sample gradients is N(0, (z C)^2 I).
    clip_norm : float
        C: per-sample gradient l2 bound.
    accountant : PrivacyAccountant
        Sample-level accountant, one step per round.
    client_sizes : sequence of int
        Every client's example count, in client order (n is their sum); every client computes
        its part of the lot each round.
    smoothing : Smoothing (default: Smoothing())
        Laplacian smoothing of the noisy gradient; sigma = 0 is DP-SGD.
    weight_decay : float (default: 0.0)
        lambda: ``lambda w`` is added after smoothing (data-independent, as the reference code).
    lr_decay : {"constant", "inverse"} (default: "constant")
    budget : float or None (default: None)
        Stop before the round whose epsilon would exceed it.
    seed : int (default: 0)
        Noise comes from ``(seed, "dp_noise", round)``; Poisson lots from the clients'
        ``(seed, "dp_lot", round, client)`` streams, fixed-size lots from ``(seed, "dp_lot", round)``
        (the runtime's seed, the same in a run).
    sampling : {"poisson", "uniform"} (default: "poisson")
        Poisson lots (rate q) or fixed-size lots of round(q n) examples without replacement; must
        match the accountant's sampling.
    """

    def __init__(self, *, lr: float, sample_rate: float, noise_multiplier: float, clip_norm: float,
                 accountant: PrivacyAccountant, client_sizes: Sequence[int], smoothing: Smoothing = Smoothing(),
                 weight_decay: float = 0.0, lr_decay: str = "constant", budget: float | None = None,
                 seed: int = 0, sampling: str = "poisson") -> None:
        if sampling not in ("poisson", "uniform") or accountant.sampling != sampling:
            raise FedsimError(f"dp_lssgd: lots are sampled {sampling!r} but the accountant accounts "
                              f"{accountant.sampling!r} sampling; they must agree (poisson or uniform)")
        self.sampling = sampling
        self.lr = lr
        self.sample_rate = sample_rate
        self.noise_multiplier = noise_multiplier
        self.clip_norm = clip_norm
        self.accountant = accountant
        self.client_sizes = tuple(int(n) for n in client_sizes)
        self.num_samples = sum(self.client_sizes)
        self.task = ClippedGradientSumTask(sample_rate=sample_rate, clip_norm=clip_norm,
                                           lot_sizes=self.client_sizes if sampling == "uniform" else None)
        self.smoothing = smoothing
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.budget = budget
        self.seed = seed

    def stop_reason(self, rnd: int) -> str | None:
        return budget_stop_reason(self.accountant, self.budget, noise_multiplier=self.noise_multiplier,
                                  sample_rate=self.sample_rate, steps=1, done=rnd)

    def noisy_direction(self, result: CohortResult, rnd: int, like: torch.Tensor) -> torch.Tensor:
        """``A_sigma^{-1} (1/(q n)) (sum_{i in B_t} clip_C(grad f_i) + N(0, (z C)^2 I))``: the clients'
        clipped sums added up, noised once, divided by the expected lot size and smoothed."""
        total = result.updates.sum(0).to(like.device)
        noisy = add_gaussian_noise(total, noise_multiplier=self.noise_multiplier, sensitivity=self.clip_norm,
                                   generator=torch_generator(self.seed, "dp_noise", rnd))
        return self.smoothing(noisy / (self.sample_rate * self.num_samples))

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        result = runtime.run_cohort(self.task, state.params, list(range(len(self.client_sizes))), rnd)
        direction = self.noisy_direction(result, rnd, state.params)
        if self.weight_decay:
            direction = direction + self.weight_decay * state.params
        lr = self.lr / (rnd + 1) if self.lr_decay == "inverse" else self.lr
        state.params = state.params - lr * direction
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        lot = int(result.num_samples.sum())
        # The lot's mean loss; a client with an empty part (NaN loss, no samples) adds nothing.
        loss_sum = sum(float(loss) * int(n) for loss, n in zip(result.train_loss, result.num_samples) if n > 0)
        extra = {"epsilon": self.accountant.epsilon(), "lot_size": float(lot),
                 "noise_std": self.noise_multiplier * self.clip_norm / (self.sample_rate * self.num_samples)}
        # Bytes stay 0 as when DP-LSSGD ran in process: its messages are not counted yet.
        return RoundMetrics(clients=len(result.clients), train_loss=loss_sum / max(lot, 1), bytes_up=0, bytes_down=0,
                            extra=extra)

    def summary(self) -> dict[str, object]:
        return privacy_summary(self.accountant, self.clip_norm, self.smoothing)

    def state_dict(self) -> dict[str, Any]:
        return {"accountant": self.accountant.state_dict()}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.accountant = PrivacyAccountant.from_state_dict(sd["accountant"])
