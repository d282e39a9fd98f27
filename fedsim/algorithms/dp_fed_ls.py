"""DP-Fed-LS: differentially private federated learning with Laplacian smoothing.

Liang, Wang, Gu, Osher and Yao, "Exploring Private Federated Learning with Laplacian Smoothing",
https://arxiv.org/abs/2005.00218; the server step:

    w^t = w^{t-1} + eta_s A_sigma^{-1} (1/m) (sum_{j in M_t} clip_G(Delta_j^t) + n),  n ~ N(0, (z G)^2 I)

Clients run local SGD and clip their update to l2 norm G (at the end of the round, or after
every local step for parity with the reference code); the trusted server adds the noise once
to the sum, divides by the number of sampled clients, smooths (post-processing: no privacy
cost) and steps with the server learning rate. sigma = 0 is DP-FedAvg (McMahan et al. 2018).
Privacy is user-level, one subsampled-Gaussian step per round with q = clients_per_round / K:
Opacus for Poisson and full participation, dp-accounting (replace-one adjacency) for fixed-size
cohorts drawn without replacement (:mod:`fedsim.privacy.analysis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fedsim.algorithms.base import RoundMetrics
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.task import ClientTask
from fedsim.privacy.accountant import PrivacyAccountant
from fedsim.privacy.clipping import clip_l2
from fedsim.privacy.mechanism import add_gaussian_noise
from fedsim.privacy.smoothing import SmoothingMode, smooth_flat
from fedsim.runtimes.base import CohortResult
from fedsim.seeding import torch_generator

__all__ = ["ClippedClientTask", "Smoothing", "DPFedLS", "budget_stop_reason", "privacy_summary"]


@dataclass(frozen=True)
class ClippedClientTask(ClientTask):
    """A client task whose sent update is clipped to l2 norm ``clip_norm`` after all other transforms.

    Clipping comes last so that no transform (an unbiased compressor's rescaling, say) can push
    the norm, hence the sensitivity, above G again; the bit count of the transforms is kept.
    """

    clip_norm: float = 1.0

    def finish(self, update, steps, state, broadcast, generator):
        update, bits = super().finish(update, steps, state, broadcast, generator)
        return clip_l2(update, self.clip_norm), bits


@dataclass(frozen=True)
class Smoothing:
    """Laplacian smoothing of the noisy aggregate: strength sigma, Laplacian power, per-tensor or global.

    ``sizes`` are the model's tensor sizes in flattening order (``ParamSpec.numels``), which
    ``per_tensor`` smoothing needs; the algorithm receives them when it is built.
    """

    sigma: float = 0.0
    order: int = 1
    mode: SmoothingMode = "per_tensor"
    sizes: tuple[int, ...] | None = None

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """``A_sigma^{-order} flat``, per tensor or on the whole vector (post-processing, no privacy cost)."""
        return smooth_flat(flat, self.sigma, order=self.order, mode=self.mode, sizes=self.sizes)


def privacy_summary(accountant: PrivacyAccountant, clip_norm: float, smoothing: Smoothing) -> dict[str, object]:
    """``summary.json``'s ``privacy`` entry: the accountant's ledger plus the clip and the smoothing."""
    ledger = accountant.ledger()
    ledger.update(clip_norm=clip_norm, smoothing_sigma=smoothing.sigma, smoothing_order=smoothing.order,
                  smoothing_mode=smoothing.mode)
    return {"privacy": ledger}


def budget_stop_reason(accountant: PrivacyAccountant, budget: float | None, *, noise_multiplier: float,
                       sample_rate: float, steps: int, done: int) -> str | None:
    """The message that stops a run before the step that would take epsilon above ``budget``."""
    if budget is None:
        return None
    nxt = accountant.epsilon_after(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps)
    if nxt <= budget:
        return None
    return (f"privacy budget reached: round {done + 1} would raise epsilon to {nxt:.4g} > privacy.budget={budget:g} "
            f"(delta={accountant.delta:g}); stopped after {done} rounds at epsilon {accountant.epsilon():.4g}")


class DPFedLS(FedAvg):
    """DP-Fed-LS (sigma > 0) and DP-FedAvg (sigma = 0) with user-level accounting.

    Takes every FedAvg option (participation, lr schedules, local work, client state store) and
    its round; only the aggregate stage differs: the unweighted, noised, smoothed sum the
    sensitivity analysis needs.

    Parameters
    ----------
    noise_multiplier : float
        z: the server adds N(0, (z G)^2 I) to the sum of clipped updates.
    accountant : PrivacyAccountant
        User-level accountant (its ledger names the sampling scheme, adjacency and analysis).
    smoothing : Smoothing (default: Smoothing())
        Laplacian smoothing on the server (with the model's tensor sizes for ``per_tensor``);
        sigma = 0 is DP-FedAvg.
    denominator : {"expected", "realized"} (default: "expected")
        Under Poisson sampling, divide the noisy sum by the expected cohort size qK (the count of
        sampled clients is itself private) or by the realized one (the reference code). Uniform
        sampling and full participation have a fixed cohort size, so both coincide.
    budget : float or None (default: None)
        Stop before the round whose epsilon would exceed it.
    **fedavg : FedAvg parameters
        ``task`` must be a :class:`ClippedClientTask` (its ``local.clip_radius = G`` also clips
        after every local step); noise comes from the ``(seed, "dp_noise", round)`` stream.
    """

    def __init__(self, *, noise_multiplier: float, accountant: PrivacyAccountant, smoothing: Smoothing = Smoothing(),
                 denominator: str = "expected", budget: float | None = None, **fedavg) -> None:
        super().__init__(**{**fedavg, "weighting": "uniform"})
        if not isinstance(self.task, ClippedClientTask):
            raise TypeError(f"DPFedLS needs a ClippedClientTask (its clip norm is the sensitivity), got {type(self.task).__name__}")
        self.clip_norm = self.task.clip_norm
        self.noise_multiplier = noise_multiplier
        self.accountant = accountant
        self.smoothing = smoothing
        self.denominator = denominator
        self.budget = budget

    @property
    def sample_rate(self) -> float:
        return self.participation.expected_size(self.num_clients) / self.num_clients

    def stop_reason(self, rnd: int) -> str | None:
        return budget_stop_reason(self.accountant, self.budget, noise_multiplier=self.noise_multiplier,
                                  sample_rate=self.sample_rate, steps=1, done=rnd)

    def denominator_size(self, received: int) -> float:
        """m, the divisor of the noisy sum: the expected cohort size, or the realized one (at least 1)."""
        if self.denominator == "realized":
            return max(received, 1)
        return self.participation.expected_size(self.num_clients)

    def aggregate(self, result: CohortResult, weights: torch.Tensor, rnd: int) -> torch.Tensor:
        """``A_sigma^{-1} (1/m) (sum_{j in M_t} clip_G(Delta_j^t) + n)``, ``n ~ N(0, (z G)^2 I)``.

        The clients clipped their updates (:class:`ClippedClientTask`); the sum is unweighted
        (``weights`` are ignored: the sensitivity G needs it) and the noise is released even for
        an empty cohort, so every round is one accounted subsampled-Gaussian step.
        """
        noisy = add_gaussian_noise(result.updates.sum(0), noise_multiplier=self.noise_multiplier, sensitivity=self.clip_norm,
                                   generator=torch_generator(self.seed, "dp_noise", rnd))
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        return self.smoothing(noisy / self.denominator_size(len(result.clients)))

    def round_metrics(self, result: CohortResult, weights: torch.Tensor, dim: int) -> RoundMetrics:
        metrics = super().round_metrics(result, weights, dim)
        metrics.train_loss = float(result.train_loss.mean()) if result.clients else float("nan")
        metrics.extra = {"epsilon": self.accountant.epsilon(),
                         "noise_std": self.noise_multiplier * self.clip_norm / self.denominator_size(len(result.clients))}
        return metrics

    def summary(self) -> dict[str, object]:
        return privacy_summary(self.accountant, self.clip_norm, self.smoothing)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "accountant": self.accountant.state_dict()}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        super().load_state_dict(sd)
        self.accountant = PrivacyAccountant.from_state_dict(sd["accountant"])
