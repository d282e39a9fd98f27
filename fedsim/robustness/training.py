"""Client-side robust training objectives: adversarial training, J^1 / J^2 and Tulip J^{2-Lip}.

An objective replaces the client's minibatch loss ``mean_i l(f(x_i), y_i)``; local SGD then
descends its parameter gradient. Each is a pure function of ``(model, params, x, y, weight,
noise)`` written with :mod:`torch.func`, so the serial runtime calls it per client and the
vectorized runtime ``vmap``-s it over the cohort with identical results. ``params`` is a flat vector or its per-tensor views (a dict, which is
what the runtimes pass: differentiating slices of a flat leaf costs a zero-filled full-length
gradient per tensor). ``weight`` is the
vectorized runtime's 0/1 padding mask (None: every sample is real); ``noise`` is a standard-normal
``(B, numel + 1)`` tensor drawn from the client's ``"objective"`` stream when ``needs_noise``.

With ``eps = 0`` (and ``lam = 0``) every objective equals the plain loss (a test checks it).

References: Finlay and Oberman, "Scaleable Input Gradient Regularization for Adversarial
Robustness" (arXiv:1905.11468): J^1 = l + eps ||grad_x l||_1 is first-order FGSM (l_inf)
adversarial training, J^2 = l + eps ||grad_x l||_2 is l_2 adversarial training;
J^{2-Lip} = J^2 + lambda max_batch ||grad_x l||_2 ("tulip", Finlay, Calder, Abbasi and Oberman,
arXiv:1808.09540). Adversarial training: Madry et al. 2018 (arXiv:1706.06083), with the inner
maximizer held constant in the outer gradient by Danskin's theorem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from fedsim.errors import FedsimError
from fedsim.robustness.attacks import NORMS, LogitModel, fgm, input_gradient, pgd

__all__ = ["AdversarialObjective", "GradientNormObjective", "Objective", "TulipObjective", "masked_mean"]


def masked_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    """Mean of ``values`` over the samples whose ``weight`` is 1 (all of them when None)."""
    if weight is None:
        return values.mean()
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def _per_sample_loss(model: LogitModel, params: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(model.logits(params, x), y, reduction="none")


def _grad_norm(g: Tensor, q: float) -> Tensor:
    """``||g_i||_q`` per sample, smoothed at 0 for q = 2 (sqrt's gradient is infinite there)."""
    flat = g.flatten(1)
    if q == 1:
        return flat.abs().sum(1)
    return (flat.pow(2).sum(1) + 1e-12).sqrt()


class Objective:
    """Base of the client objectives: ``__call__`` returns the scalar minibatch objective."""

    needs_noise: ClassVar[bool] = False

    def __call__(self, model: LogitModel, params: Tensor, x: Tensor, y: Tensor, weight: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class AdversarialObjective(Objective):
    """Adversarial training with a mix ratio: ``(1 - mix) l(x) + mix l(x_adv)``.

    Parameters
    ----------
    attack : {"fgsm", "fgm", "pgd"}
        FGSM (l_inf, one step), FGM (l_2, one step along the normalized gradient) or PGD.
    eps : float
        Radius in input units (the caller converts from pixel units).
    norm : {"linf", "l2"} (default: "linf")
        PGD's ball (FGSM is l_inf and FGM l_2 by definition).
    steps, step_size, random_start
        PGD's iterations, step (None: 2.5 eps / steps) and random start.
    mix : float (default: 1.0)
        Weight of the adversarial loss; 0 is plain training, 0.5 Goodfellow et al.'s mix.
    bounds : (lo, hi) or None
        Data range of the inputs.
    """

    attack: str = "fgsm"
    eps: float = 0.1
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    random_start: bool = False
    mix: float = 1.0
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.attack not in ("fgsm", "fgm", "pgd"):
            raise FedsimError(f"robustness.training.attack: '{self.attack}' is unknown (allowed: fgsm, fgm, pgd)")
        if self.norm not in NORMS:
            raise FedsimError(f"robustness.training.norm: '{self.norm}' is unknown (allowed: {', '.join(NORMS)})")
        if not 0.0 <= self.mix <= 1.0:
            raise FedsimError(f"robustness.training.mix: must be in [0, 1], got {self.mix}")

    @property
    def needs_noise(self) -> bool:  # type: ignore[override]  # a property where the base has a class attribute
        return self.attack == "pgd" and self.random_start

    def adversarial(self, model: LogitModel, params: Tensor, x: Tensor, y: Tensor, noise: Tensor | None = None) -> Tensor:
        """The inner maximizer ``x_adv`` (constant for the outer gradient: ``params`` is detached)."""
        p = {k: v.detach() for k, v in params.items()} if isinstance(params, dict) else params.detach()
        if self.attack == "fgsm":
            return fgm(model, p, x, y, self.eps, "linf", self.bounds)
        if self.attack == "fgm":
            return fgm(model, p, x, y, self.eps, "l2", self.bounds)
        return pgd(
            model, p, x, y, self.eps, norm=self.norm, steps=self.steps, step_size=self.step_size,
            random_init=self.random_start, start_noise=noise, bounds=self.bounds,
        )

    def __call__(self, model: LogitModel, params: Tensor, x: Tensor, y: Tensor, weight: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        if self.mix == 0.0:
            return masked_mean(_per_sample_loss(model, params, x, y), weight)
        adv = masked_mean(_per_sample_loss(model, params, self.adversarial(model, params, x, y, noise), y), weight)
        if self.mix == 1.0:  # no clean term to differentiate
            return adv
        return (1.0 - self.mix) * masked_mean(_per_sample_loss(model, params, x, y), weight) + self.mix * adv


@dataclass(frozen=True)
class GradientNormObjective(Objective):
    """J^q: ``mean_i [l(x_i) + eps ||grad_x l(x_i)||_q]`` by double backpropagation (Finlay and Oberman, arXiv:1905.11468).

    ``q = 1`` (J^1) is first-order l_inf (FGSM) adversarial training, ``q = 2`` (J^2) l_2.
    """

    eps: float = 0.1
    q: int = 2

    def __post_init__(self) -> None:
        if self.q not in (1, 2):
            raise FedsimError(f"robustness.training.q: must be 1 (J^1) or 2 (J^2), got {self.q}")

    def penalty_terms(self, model: LogitModel, params: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample losses and per-sample ``||grad_x l||_q`` (differentiable in ``params``)."""
        return _per_sample_loss(model, params, x, y), _grad_norm(input_gradient(model, params, x, y), self.q)

    def __call__(self, model: LogitModel, params: Tensor, x: Tensor, y: Tensor, weight: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        losses, norms = self.penalty_terms(model, params, x, y)
        return masked_mean(losses + self.eps * norms, weight)


@dataclass(frozen=True)
class TulipObjective(GradientNormObjective):
    """J^{2-Lip} ("tulip"): J^2 + ``lam * max_{i in batch} ||grad_x l(x_i)||_2`` (arXiv:1808.09540).

    The max over the minibatch stands for the paper's max over the data set (a Lipschitz
    estimate of the loss in x).
    """

    lam: float = 0.1
    q: int = 2

    def __call__(self, model: LogitModel, params: Tensor, x: Tensor, y: Tensor, weight: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        losses, norms = self.penalty_terms(model, params, x, y)
        real = norms if weight is None else torch.where(weight > 0, norms, torch.zeros_like(norms))
        return masked_mean(losses + self.eps * norms, weight) + self.lam * real.amax()
