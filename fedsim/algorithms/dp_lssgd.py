"""DP-SGD and DP-LSSGD: sample-level private parallel SGD with optional Laplacian smoothing.

DP-SGD: Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar and Zhang, "Deep Learning with
Differential Privacy", CCS 2016, https://arxiv.org/abs/1607.00133. DP-LSSGD: Wang, Gu, Boedihardjo,
Wang, Barekat and Osher, "DP-LSSGD: A Stochastic Optimization Method to Lift the Utility in
Privacy-Preserving ERM", https://arxiv.org/abs/1906.12056 (spec laplacian-smoothing-dp-fed-ls.md §2.3):

    w^{t+1} = w^t - eta_t A_sigma^{-1} ( (1/(q n)) (sum_{i in B_t} clip_C(grad f_i(w^t)) + N(0, (z C)^2 I)) )

Every example of every client joins the lot B_t independently with probability q (``poisson``:
Opacus' accounting is exact), or the lot is a fixed q n examples drawn without replacement from
all n (``uniform``: accounted by dp-accounting under replace-one adjacency, an RDP upper bound).
Each gradient is clipped to norm C, the trusted server adds noise once to the sum, divides by
the expected lot size q n, smooths (post-processing) and steps.
sigma = 0 is DP-SGD. All clients take part in every round (parallel SGD with full
participation), so the privacy unit is one training example and q is the only subsampling.
Per-sample gradients come from ``torch.func.vmap`` over ``torch.func.grad``, computed in process
on the runtime's device.
"""

from __future__ import annotations

import torch
from torch.func import grad, vmap

from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.dp_fed_ls import Smoothing, budget_stop_reason
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel
from fedsim.privacy.accountant import PrivacyAccountant
from fedsim.privacy.analysis import cohort_size
from fedsim.privacy.clipping import clip_l2
from fedsim.privacy.mechanism import add_gaussian_noise
from fedsim.runtimes.base import Runtime
from fedsim.seeding import torch_generator

__all__ = ["per_sample_grads", "DPLSSGD"]


def per_sample_grads(model: FunctionalModel, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(B, d)`` gradients of each example's loss at the flat ``params`` (torch.func vmap of grad)."""

    def loss_one(p: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return model.loss(p, xi.unsqueeze(0), yi.unsqueeze(0))

    return vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)


class DPLSSGD(Algorithm):
    """DP-LSSGD (sigma > 0) and DP-SGD (sigma = 0) with sample-level accounting.

    Parameters
    ----------
    lr : float
        Step size eta (eta / (t + 1) with ``lr_decay="inverse"``, the slides' "step size 1/t").
    sample_rate : float
        q: each example's probability of joining a round's lot (expected lot size q n).
    noise_multiplier : float
        z: the noise on the sum of clipped per-sample gradients is N(0, (z C)^2 I).
    clip_norm : float
        C: per-sample gradient l2 bound.
    accountant : PrivacyAccountant
        Sample-level accountant, one step per round.
    num_samples : int
        n: training examples over all clients.
    smoothing : Smoothing (default: Smoothing())
        Laplacian smoothing of the noisy gradient; sigma = 0 is DP-SGD.
    weight_decay : float (default: 0.0)
        lambda: ``lambda w`` is added after smoothing (data-independent, as the reference code).
    lr_decay : {"constant", "inverse"} (default: "constant")
    budget : float or None (default: None)
        Stop before the round whose epsilon would exceed it.
    seed : int (default: 0)
        Poisson lots come from ``(seed, "dp_lot", round, client)``, fixed-size lots from
        ``(seed, "dp_lot", round)``, noise from ``(seed, "dp_noise", round)``.
    sampling : {"poisson", "uniform"} (default: "poisson")
        Poisson lots (rate q) or fixed-size lots of round(q n) examples without replacement; must
        match the accountant's sampling.
    """

    def __init__(self, *, lr: float, sample_rate: float, noise_multiplier: float, clip_norm: float,
                 accountant: PrivacyAccountant, num_samples: int, smoothing: Smoothing = Smoothing(),
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
        self.num_samples = num_samples
        self.smoothing = smoothing
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.budget = budget
        self.seed = seed

    def stop_reason(self, rnd: int) -> str | None:
        return budget_stop_reason(self.accountant, self.budget, noise_multiplier=self.noise_multiplier,
                                  sample_rate=self.sample_rate, steps=1, done=rnd)

    def _fixed_lot(self, rnd: int, sizes: list[int]) -> list[torch.Tensor]:
        """Per-client masks of one lot of round(q n) examples drawn without replacement from all n."""
        n = sum(sizes)
        lot = torch.randperm(n, generator=torch_generator(self.seed, "dp_lot", rnd))[:cohort_size(self.sample_rate, n)]
        chosen = torch.zeros(n, dtype=torch.bool)
        chosen[lot] = True
        return list(torch.split(chosen, sizes))

    def clipped_sum(self, params: torch.Tensor, rnd: int, runtime: Runtime) -> tuple[torch.Tensor, int, float]:
        """Sum of clipped per-sample gradients over this round's lot, its size and mean loss."""
        data, model = runtime.data, runtime.model
        total, lot, loss_sum = torch.zeros_like(params), 0, 0.0
        fixed = self._fixed_lot(rnd, [int(s) for s in data.client_sizes()]) if self.sampling == "uniform" else None
        for client in range(data.num_clients):
            idx = data.client_indices[client]
            if fixed is not None:
                members = fixed[client].to(idx.device)
            else:
                gen = torch_generator(self.seed, "dp_lot", rnd, client)
                members = (torch.rand(len(idx), generator=gen) < self.sample_rate).to(idx.device)
            if not bool(members.any()):
                continue
            # Gather only the lot's rows (copying a client's whole data every step was 75% of a step).
            lot_idx = idx[members]
            xb, yb = data.x_train[lot_idx], data.y_train[lot_idx]
            total += clip_l2(per_sample_grads(model, params, xb, yb), self.clip_norm).sum(0)
            lot += len(yb)
            loss_sum += float(model.loss(params, xb, yb)) * len(yb)
        return total, lot, loss_sum / max(lot, 1)

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        params = state.params.to(runtime.data.x_train.device)
        total, lot, loss = self.clipped_sum(params, rnd, runtime)
        noisy = add_gaussian_noise(total, noise_multiplier=self.noise_multiplier, sensitivity=self.clip_norm,
                                   generator=torch_generator(self.seed, "dp_noise", rnd))
        expected_lot = self.sample_rate * self.num_samples
        direction = self.smoothing(noisy / expected_lot)
        if self.weight_decay:
            direction = direction + self.weight_decay * params
        lr = self.lr / (rnd + 1) if self.lr_decay == "inverse" else self.lr
        state.params = (params - lr * direction).to(state.params.device)
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        extra = {"epsilon": self.accountant.epsilon(), "lot_size": float(lot),
                 "noise_std": self.noise_multiplier * self.clip_norm / expected_lot}
        return RoundMetrics(clients=runtime.data.num_clients, train_loss=loss, bytes_up=0, bytes_down=0, extra=extra)

    def summary(self) -> dict[str, object]:
        ledger = self.accountant.ledger()
        ledger.update(clip_norm=self.clip_norm, smoothing_sigma=self.smoothing.sigma,
                      smoothing_order=self.smoothing.order, smoothing_mode=self.smoothing.mode)
        return {"privacy": ledger}

    def state_dict(self) -> dict[str, object]:
        return {"accountant": self.accountant.state_dict()}

    def load_state_dict(self, sd: dict[str, object]) -> None:
        self.accountant = PrivacyAccountant.from_state_dict(sd["accountant"])  # type: ignore[arg-type]
