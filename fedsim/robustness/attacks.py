"""Adversarial examples: FGSM, FGM (l2), PGD (l_inf / l_2, random start) and Carlini-Wagner l2.

All attacks are pure functions of ``(model, params, x, y)`` batched over the samples of ``x``.
They use :func:`torch.func.grad` for the input gradient (Carlini-Wagner's Adam is written out), so they also run under
``torch.func.vmap`` over clients (one ``params`` row and one minibatch per client) and inside a
training objective whose parameter gradient is taken afterwards (the perturbation is then a
constant, Danskin's theorem; Madry et al. 2018, Appendix A). Randomness (PGD's random start) enters only through an
explicit ``generator`` or an explicit standard-normal ``start_noise`` tensor, never the global RNG.

``eps`` is a float or a per-sample ``(B,)`` tensor (used by the minimal-distance bisection of
:mod:`fedsim.robustness.evaluation`). ``bounds = (lo, hi)`` clamps ``x + delta`` to the data range.

References: Goodfellow, Shlens and Szegedy 2015 (FGSM, arXiv:1412.6572); Madry et al. 2018 (PGD,
arXiv:1706.06083); Carlini and Wagner 2017 (arXiv:1608.04644); the dual-norm attack direction
``a . v = ||v||_*`` is the first-order optimal perturbation of Finlay and Oberman
(arXiv:1905.11468).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import grad

from fedsim.errors import FedsimError

__all__ = [
    "NORMS",
    "LogitModel",
    "carlini_wagner_l2",
    "cw_margin",
    "dual_direction",
    "fgm",
    "fgsm",
    "input_gradient",
    "per_sample_norm",
    "pgd",
    "project",
    "random_start",
]

NORMS = ("linf", "l2")


class LogitModel(Protocol):
    """What an attack needs of a model: logits at its parameters (a FunctionalModel: flat vector or per-tensor dict)."""

    def logits(self, params: Any, x: Tensor) -> Tensor: ...


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise FedsimError(f"attack norm: '{norm}' is not supported (allowed: {', '.join(NORMS)})")


def _per_sample(eps: float | Tensor, like: Tensor) -> float | Tensor:
    """``eps`` broadcastable against ``like`` (B, ...): a float stays, a (B,) tensor gets trailing dims."""
    if isinstance(eps, Tensor) and eps.dim() > 0:
        return eps.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)
    return eps


def per_sample_norm(v: Tensor, norm: str) -> Tensor:
    """``||v_i||`` over all but the first dimension: ``linf``, ``l2`` or ``l1``."""
    flat = v.flatten(1)
    if norm == "linf":
        return flat.abs().amax(1)
    if norm == "l1":
        return flat.abs().sum(1)
    return flat.norm(dim=1)


def input_gradient(model: LogitModel, params: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``grad_x l(f(x_i), y_i)`` for every sample: the gradient of the summed cross-entropy.

    Summing (not averaging) keeps each row the gradient of that sample's own loss.
    """

    def total(xx: Tensor) -> Tensor:
        return F.cross_entropy(model.logits(params, xx), y, reduction="sum")

    return grad(total)(x)


def dual_direction(g: Tensor, norm: str) -> Tensor:
    """The unit-norm ``a`` maximizing ``a . g``: ``sign(g)`` for l_inf, ``g / ||g||_2`` for l_2.

    Finlay and Oberman (arXiv:1905.11468): the first-order optimal attack of ``max_{||a|| <= eps} l(x + a)`` is
    ``eps a`` with ``a . v = ||v||_*``. A zero gradient gives a zero direction.
    """
    _check_norm(norm)
    if norm == "linf":
        return g.sign()
    n = per_sample_norm(g, "l2")
    return g / _per_sample(torch.where(n > 0, n, torch.ones_like(n)), g)


def project(delta: Tensor, eps: float | Tensor, norm: str) -> Tensor:
    """Euclidean projection of each ``delta_i`` onto the ``norm`` ball of radius ``eps``.

    l_inf: coordinatewise clipping to ``[-eps, eps]`` (the projection step of PGD, Madry et al. 2018); l_2: rescaling
    by ``min(1, eps / ||delta_i||_2)``.
    """
    _check_norm(norm)
    e = _per_sample(eps, delta)
    if norm == "linf":
        return delta.clamp(-e, e) if not isinstance(e, Tensor) else torch.maximum(torch.minimum(delta, e), -e)
    n = per_sample_norm(delta, "l2")
    e_vec = eps if isinstance(eps, Tensor) and eps.dim() > 0 else torch.full_like(n, float(eps))
    scale = torch.where(n > e_vec, e_vec / n.clamp_min(1e-30), torch.ones_like(n))
    return delta * _per_sample(scale, delta)


def _clamp(x_adv: Tensor, bounds: tuple[float, float] | None) -> Tensor:
    return x_adv if bounds is None else x_adv.clamp(bounds[0], bounds[1])


def fgm(
    model: LogitModel,
    params: Tensor,
    x: Tensor,
    y: Tensor,
    eps: float | Tensor,
    norm: str = "l2",
    bounds: tuple[float, float] | None = None,
) -> Tensor:
    """Fast gradient method: ``x + eps a(grad_x l)`` with ``a`` the dual-norm direction, clamped.

    ``norm="linf"`` is FGSM (Goodfellow et al. 2015); ``norm="l2"`` moves along the normalized
    gradient (the l_2 dual direction). Returns the adversarial inputs (detached).
    """
    g = input_gradient(model, params, x, y)
    return _clamp(x + _per_sample(eps, x) * dual_direction(g, norm), bounds).detach()


def fgsm(
    model: LogitModel, params: Tensor, x: Tensor, y: Tensor, eps: float | Tensor, bounds: tuple[float, float] | None = None
) -> Tensor:
    """FGSM, ``x + eps sign(grad_x l(x, y))`` (Goodfellow, Shlens and Szegedy 2015, arXiv:1412.6572)."""
    return fgm(model, params, x, y, eps, "linf", bounds)


def random_start(noise: Tensor, eps: float | Tensor, norm: str) -> Tensor:
    """Map standard-normal ``noise`` of shape ``(B, numel + 1)`` to a uniform point of the eps-ball.

    l_inf: ``eps (2 Phi(z) - 1)`` per coordinate (uniform in the cube, exactly). l_2: direction
    ``z / ||z||`` from the first ``numel`` entries and radius ``eps U^{1/n}`` with ``U = Phi(z_last)``,
    uniform in the ball. The caller reshapes the result to the input shape.
    """
    _check_norm(norm)
    z, last = noise[:, :-1], noise[:, -1]
    phi = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    if norm == "linf":
        return _per_sample(eps, z) * (2 * phi - 1)
    n = z.shape[1]
    u = 0.5 * (1 + torch.erf(last / math.sqrt(2)))
    radius = u ** (1.0 / n)
    return _per_sample(eps, z) * _per_sample(radius, z) * z / z.norm(dim=1, keepdim=True).clamp_min(1e-30)


def pgd(
    model: LogitModel,
    params: Tensor,
    x: Tensor,
    y: Tensor,
    eps: float | Tensor,
    *,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | Tensor | None = None,
    random_init: bool = False,
    generator: torch.Generator | None = None,
    start_noise: Tensor | None = None,
    bounds: tuple[float, float] | None = None,
) -> Tensor:
    """Projected gradient ascent on the loss over the ``norm`` ball of radius ``eps`` around ``x``.

    ``delta^{k+1} = Pi_eps(clamp(x + delta^k + alpha a(grad) ) - x)``, multi-step FGSM
    for l_inf and the iterative l_2-projected gradient (Madry et al. 2018). Without random start and
    with ``alpha = eps / steps`` on l_inf it is IFGSM^M (Kurakin, Goodfellow and Bengio, "Adversarial Examples in the Physical World" (arXiv:1607.02533)), projected and clamped.

    Parameters
    ----------
    steps : int (default: 10)
        Ascent steps k.
    step_size : float or (B,) tensor or None (default: 2.5 eps / steps, Madry et al.)
        alpha.
    random_init : bool (default: False)
        Start from a uniform point of the ball, drawn from ``generator`` or given as ``start_noise``
        (standard normal, ``(B, numel + 1)``; see :func:`random_start`), which is what a caller
        under ``vmap`` passes.
    bounds : (lo, hi) or None
        Data range; every iterate is clamped to it.

    Returns
    -------
    Tensor
        Adversarial inputs, ``||x_adv - x|| <= eps`` in ``norm`` (detached).
    """
    _check_norm(norm)
    if steps < 1:
        raise FedsimError(f"attack steps: must be >= 1, got {steps}")
    alpha = step_size if step_size is not None else (2.5 * eps / steps)
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_init:
        if start_noise is None:
            if generator is None:
                raise FedsimError("attack random_start: needs a generator or start_noise (fedsim draws no global randomness)")
            start_noise = torch.randn(x.shape[0], x[0].numel() + 1, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        delta = random_start(start_noise, eps, norm).reshape(x.shape)
        delta = _clamp(x + delta, bounds) - x
    for _ in range(steps):
        g = input_gradient(model, params, x + delta, y)
        delta = project(delta + _per_sample(alpha, x) * dual_direction(g, norm), eps, norm)
        delta = _clamp(x + delta, bounds) - x
    return (x + delta).detach()


def cw_margin(logits: Tensor, y: Tensor) -> Tensor:
    """``Z_y - max_{j != y} Z_j`` per sample: Carlini and Wagner's f_6 before the ``max(., -kappa)``.

    Negative exactly where the sample is misclassified (the mask is built by comparison, not
    ``one_hot``, so it runs under ``vmap``).
    """
    mask = torch.arange(logits.shape[1], device=logits.device) == y[:, None]
    true = (logits * mask).sum(1)
    other = torch.where(mask, torch.full_like(logits, float("-inf")), logits).amax(1)
    return true - other


def _cw_search(
    model: LogitModel, params: Tensor, x: Tensor, y: Tensor, w0: Tensor, const: Tensor, kappa: float, steps: int, lr: float,
    bounds: tuple[float, float],
) -> tuple[Tensor, Tensor]:
    """One inner minimization at the per-sample constants ``const``: Adam (Kingma and Ba 2015, eq. of
    their Algorithm 1) on ``||x'(w) - x||_2^2 + c max(f_6(x'(w)), -kappa)`` from ``w0``.

    Returns the squared distance of the closest iterate with ``f_6 < -kappa`` (``inf`` where none)
    and that iterate (``x`` where none). Written with :func:`torch.func.grad` and ``torch.where``
    so it vmaps over clients.
    """
    lo, hi = bounds
    batch = (-1, *([1] * (x.dim() - 1)))

    def objective(w: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        x_adv = lo + (hi - lo) * (torch.tanh(w) + 1) / 2
        dist = (x_adv - x).flatten(1).pow(2).sum(1)
        margin = cw_margin(model.logits(params, x_adv), y)
        return (dist + const * margin.clamp_min(-kappa)).sum(), (x_adv, dist, margin)

    w, m, v = w0, torch.zeros_like(w0), torch.zeros_like(w0)
    best_dist = torch.full_like(const, float("inf"))
    best = x
    beta1, beta2 = 0.9, 0.999
    for t in range(1, steps + 1):
        g, (x_adv, dist, margin) = grad(objective, has_aux=True)(w)
        # The iterate the gradient was taken at is judged (as in the paper's reference code).
        better = (margin < -kappa) & (dist < best_dist)
        best_dist = torch.where(better, dist, best_dist)
        best = torch.where(better.reshape(batch), x_adv, best)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + 1e-8)
    return best_dist, best.detach()


def carlini_wagner_l2(
    model: LogitModel,
    params: Tensor,
    x: Tensor,
    y: Tensor,
    *,
    initial_const: float = 1e-3,
    binary_search_steps: int = 9,
    kappa: float = 0.0,
    steps: int = 1000,
    lr: float = 0.01,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Carlini-Wagner l2, untargeted (Carlini and Wagner 2017, arXiv:1608.04644, section V.A).

    Minimizes ``||x' - x||_2^2 + c max(Z_y - max_{j != y} Z_j, -kappa)`` over ``x' = lo + (hi - lo)
    (tanh(w) + 1) / 2`` (the change of variables that keeps ``x'`` in the data range) with Adam,
    for a per-sample constant ``c`` found by binary search as in the authors' reference code: start
    at ``initial_const``; after each of ``binary_search_steps`` inner runs (each restarted from
    ``x``), a sample that succeeded sets ``upper = min(upper, c)``, one that failed sets
    ``lower = max(lower, c)``, and ``c`` becomes ``(lower + upper) / 2`` once an upper bound is known,
    else ``10 c``. Success means ``max_{j != y} Z_j - Z_y > kappa`` (misclassified with confidence
    kappa).

    Returns, per sample, the closest successful iterate over all runs; a sample never broken is
    returned as ``x`` itself (bit for bit: compare with ``x`` to flag failures). Batched over
    samples (Adam is coordinate-wise, so samples do not interact) and vmappable over clients.
    ``binary_search_steps = 1`` is the attack at the fixed constant ``initial_const``.
    """
    if binary_search_steps < 1 or steps < 1:
        raise FedsimError(f"attack cw: binary_search_steps and steps must be >= 1, got {binary_search_steps}, {steps}")
    if initial_const <= 0:
        raise FedsimError(f"attack cw: initial_const must be > 0, got {initial_const}")
    lo, hi = bounds
    x = x.detach()
    params = {k: v.detach() for k, v in params.items()} if isinstance(params, dict) else params.detach()
    # atanh of the data scaled into (-1, 1); 1e-6 keeps pixels at the bounds finite.
    w0 = torch.atanh((((x - lo) / (hi - lo)).clamp(1e-6, 1 - 1e-6) * 2 - 1))
    const = torch.full((x.shape[0],), float(initial_const), dtype=x.dtype, device=x.device)
    lower, upper = torch.zeros_like(const), torch.full_like(const, float("inf"))
    best, best_dist = x, torch.full_like(const, float("inf"))
    for _ in range(binary_search_steps):
        dist, adv = _cw_search(model, params, x, y, w0, const, kappa, steps, lr, bounds)
        better = dist < best_dist
        best_dist = torch.where(better, dist, best_dist)
        best = torch.where(better.reshape(-1, *([1] * (x.dim() - 1))), adv, best)
        success = torch.isfinite(dist)
        upper = torch.where(success, torch.minimum(upper, const), upper)
        lower = torch.where(success, lower, torch.maximum(lower, const))
        const = torch.where(torch.isfinite(upper), (lower + upper) / 2, 10 * const)
    return best.detach()
