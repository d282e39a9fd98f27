"""Robust evaluation: accuracy under an attack at given radii, and the minimal adversarial distance.

Two metrics: robust accuracy under FGSM / IFGSM^20 / C&W at a radius, and the median l2 / l_inf
distance to the closest adversarial example found plus the % error at a fixed radius (the
metrics of Finlay, Calder, Abbasi and Oberman, "Lipschitz Regularized Deep Neural Networks Generalize and Are
Adversarially Robust" (arXiv:1808.09540)). The minimal distance of a sample
is found by bisection on the radius of a PGD attack (per sample, batched): the smallest eps in
``[0, eps_max]`` at which PGD misclassifies it, to ``eps_max / 2^bisection_steps``; a sample the
clean model already misclassifies has distance 0 and one PGD cannot break at ``eps_max`` has
distance ``inf`` (so the median is an upper bound on the true minimal distance of the model:
PGD is not exact).

Radii here are in input units; :func:`data_range` gives the factor to convert from the data's
natural [0, 1] pixel range (the units radii are usually quoted in).

A model with forward noise (EnResNet) is evaluated and attacked at one fixed noise realization
per batch, drawn from a generator seeded with ``noise_seed`` (the same draws for the clean
accuracy and for every attack and radius): within a batch the model is then a deterministic
function the white-box attack sees completely, and the drop from clean to robust accuracy is
the attack's alone. (An attack on the expectation over the noise, EOT, is not done.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fedsim.errors import FedsimError
from fedsim.robustness.attacks import NORMS, LogitModel, carlini_wagner_l2, fgm, pgd


def _batches(model: LogitModel, x: Tensor, batch_size: int, noise_seed: int | None) -> Iterator[tuple[slice, LogitModel]]:
    """``(rows, model)`` per batch of ``x``; a noise model comes with that batch's fixed noise
    (:class:`~fedsim.models.functional.FixedNoise`, from a generator seeded with ``noise_seed``)."""
    n = x.shape[0]
    if not _has_noise(model):
        for s in range(0, n, batch_size):
            yield slice(s, s + batch_size), model
        return
    noisy: Any = model  # a FunctionalModel (duck-typed: this layer does not import fedsim.models)
    batch_size = noisy.eval_batch_size(batch_size)
    generator = torch.Generator().manual_seed(noise_seed if noise_seed is not None else 0)
    for s in range(0, n, batch_size):
        yield slice(s, s + batch_size), noisy.with_noise(noisy.draw_noise(min(batch_size, n - s), generator, x))


def _has_noise(model: LogitModel) -> bool:
    """Whether ``model`` takes forward noise (FunctionalModel.noise_numel > 0: EnResNet)."""
    return bool(getattr(model, "noise_numel", 0))

__all__ = ["ATTACKS", "AttackSpec", "attack_batch", "data_range", "minimal_distance", "robust_accuracy", "robust_report"]

ATTACKS = ("fgsm", "fgm", "pgd", "ifgsm", "cw")


def data_range(x: Tensor) -> tuple[float, float]:
    """``(min, max)`` of the inputs: the clamp bounds, and ``max - min`` converts a pixel-unit eps
    (a fraction of the data range) to input units for linearly normalized images."""
    return float(x.min()), float(x.max())


@dataclass(frozen=True)
class AttackSpec:
    """One attack of a robust evaluation (radii in input units).

    ``ifgsm`` is IFGSM^M (M = ``steps``; Kurakin, Goodfellow and Bengio, arXiv:1607.02533): l_inf
    PGD without random start (step 2.5 eps / M, projected onto the ball and clamped to the data range). ``cw`` is
    Carlini-Wagner l2 (:func:`~fedsim.robustness.attacks.carlini_wagner_l2`: ``steps`` Adam steps per
    constant, ``cw_binary_search_steps`` constants from ``cw_initial_const``, confidence ``cw_kappa``); it
    ignores ``eps`` for the attack and counts a success only within ``eps`` in l2.
    """

    attack: str = "pgd"
    norm: str = "linf"
    steps: int = 20
    random_start: bool = False
    cw_initial_const: float = 1e-3
    cw_binary_search_steps: int = 9
    cw_kappa: float = 0.0
    cw_lr: float = 0.01

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise FedsimError(f"robustness.evaluation.attack: '{self.attack}' is unknown (allowed: {', '.join(ATTACKS)})")
        if self.norm not in NORMS:
            raise FedsimError(f"robustness.evaluation.norm: '{self.norm}' is unknown (allowed: {', '.join(NORMS)})")


def attack_batch(
    model: LogitModel, params: Tensor, x: Tensor, y: Tensor, spec: AttackSpec, eps: float | Tensor,
    bounds: tuple[float, float] | None, generator: torch.Generator | None = None,
) -> Tensor:
    """Adversarial inputs for one batch under ``spec`` at radius ``eps``."""
    if spec.attack == "fgsm":
        return fgm(model, params, x, y, eps, "linf", bounds)
    if spec.attack == "fgm":
        return fgm(model, params, x, y, eps, "l2", bounds)
    if spec.attack in ("pgd", "ifgsm"):
        norm = "linf" if spec.attack == "ifgsm" else spec.norm
        return pgd(model, params, x, y, eps, norm=norm, steps=spec.steps, random_init=spec.random_start and spec.attack == "pgd",
                   generator=generator, bounds=bounds)
    lo, hi = bounds if bounds is not None else (float(x.min()), float(x.max()))
    adv = carlini_wagner_l2(model, params, x, y, initial_const=spec.cw_initial_const, binary_search_steps=spec.cw_binary_search_steps,
                            kappa=spec.cw_kappa, steps=spec.steps, lr=spec.cw_lr, bounds=(lo, hi))
    dist = (adv - x).flatten(1).norm(dim=1)
    e = eps if isinstance(eps, Tensor) else torch.full_like(dist, float(eps))
    keep = (dist <= e).reshape(-1, *([1] * (x.dim() - 1)))
    return torch.where(keep, adv, x)


def robust_accuracy(
    model: LogitModel, params: Tensor, x: Tensor, y: Tensor, spec: AttackSpec, eps: float,
    bounds: tuple[float, float] | None = None, batch_size: int = 500, generator: torch.Generator | None = None,
    noise_seed: int | None = None,
) -> float:
    """Fraction of ``(x, y)`` classified correctly after ``spec``'s attack at radius ``eps``.

    ``noise_seed``: a noise model's fixed per-batch noise (see the module docstring).
    """
    params = params.detach()
    correct = 0
    for rows, m in _batches(model, x, batch_size, noise_seed):
        xb, yb = x[rows], y[rows]
        adv = xb if eps == 0 else attack_batch(m, params, xb, yb, spec, eps, bounds, generator)
        with torch.no_grad():
            correct += int((m.logits(params, adv).argmax(1) == yb).sum())
    return correct / len(y)


def minimal_distance(
    model: LogitModel, params: Tensor, x: Tensor, y: Tensor, *, norm: str = "l2", eps_max: float,
    bisection_steps: int = 10, pgd_steps: int = 20, bounds: tuple[float, float] | None = None, batch_size: int = 500,
    noise_seed: int | None = None,
) -> Tensor:
    """Per-sample smallest PGD radius that misclassifies, by bisection (see the module docstring)."""
    params = params.detach()
    out = []
    for rows, m in _batches(model, x, batch_size, noise_seed):
        xb, yb = x[rows], y[rows]

        def fooled(eps: Tensor) -> Tensor:
            adv = pgd(m, params, xb, yb, eps, norm=norm, steps=pgd_steps, bounds=bounds)
            with torch.no_grad():
                return m.logits(params, adv).argmax(1) != yb

        with torch.no_grad():
            wrong = m.logits(params, xb).argmax(1) != yb
        hi = torch.full((len(yb),), float(eps_max), dtype=xb.dtype, device=xb.device)
        lo = torch.zeros_like(hi)
        reachable = fooled(hi)
        for _ in range(bisection_steps):
            mid = 0.5 * (lo + hi)
            f = fooled(mid)
            hi = torch.where(f, mid, hi)
            lo = torch.where(f, lo, mid)
        dist = torch.where(reachable, hi, torch.full_like(hi, float("inf")))
        out.append(torch.where(wrong, torch.zeros_like(dist), dist))
    return torch.cat(out)


def robust_report(
    model: LogitModel, params: Tensor, x: Tensor, y: Tensor, *, attacks: list[tuple[AttackSpec, list[float]]],
    distance_norms: tuple[str, ...] = ("l2",), distance_max: dict[str, float] | None = None, bisection_steps: int = 10,
    pgd_steps: int = 20, seed_generator: torch.Generator | None = None, noise_seed: int | None = None,
) -> dict[str, float]:
    """Clean accuracy, robust accuracy per attack and radius, median minimal distance per norm.

    Radii and distances are in pixel units (fractions of the data range, :func:`data_range`);
    keys read ``robust_acc/<attack>[_<norm>]/<eps>`` and ``median_distance/<norm>``. A noise
    model is evaluated at the same fixed per-batch noise (``noise_seed``) in every entry.
    """
    bounds = data_range(x)
    scale = bounds[1] - bounds[0]
    if _has_noise(model):
        clean = robust_accuracy(model, params, x, y, AttackSpec(), 0.0, bounds, noise_seed=noise_seed)
    else:
        with torch.no_grad():
            clean = float((model.logits(params, x).argmax(1) == y).double().mean())
    out: dict[str, float] = {"clean_acc": clean}
    for spec, radii in attacks:
        name = spec.attack + (f"_{spec.norm}" if spec.attack == "pgd" else "")
        for eps in radii:
            out[f"robust_acc/{name}/{eps:g}"] = robust_accuracy(model, params, x, y, spec, eps * scale, bounds, generator=seed_generator,
                                                                noise_seed=noise_seed)
    limits = {"l2": 10.0, "linf": 0.5, **(distance_max or {})}
    for norm in distance_norms:
        d = minimal_distance(model, params, x, y, norm=norm, eps_max=limits[norm] * scale, bisection_steps=bisection_steps,
                             pgd_steps=pgd_steps, bounds=bounds, noise_seed=noise_seed)
        out[f"median_distance/{norm}"] = float(d.median()) / scale
    return out
