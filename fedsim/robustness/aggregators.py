"""Byzantine-robust aggregation rules on the ``(C, d)`` matrix of client updates.

Every rule is one function ``rule(updates, weights, f=..., ...) -> (d,)`` working on the whole
matrix at once; ``weights`` are FedAvg's ``p_k`` (summing to one). ``f`` is the number of Byzantine
rows the rule is asked to tolerate. Where a rule's guarantee needs a condition on ``(n, f)`` it
is checked and a violation refused with :class:`~fedsim.errors.FedsimError`: a rule run outside
its breakdown point returns a number with no meaning.

:class:`Aggregator` turns a rule plus an assumed Byzantine *fraction* into the single callable
the FedAvg family's aggregate stage takes (``f = floor(fraction * C)`` per cohort).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from fedsim.errors import FedsimError

__all__ = [
    "AGGREGATORS",
    "Aggregator",
    "bulyan",
    "centered_clipping",
    "coordinate_median",
    "geometric_median",
    "krum",
    "krum_scores",
    "mean",
    "multi_krum",
    "trimmed_mean",
]


def _uniform(updates: Tensor) -> Tensor:
    return torch.full((updates.shape[0],), 1.0 / updates.shape[0], dtype=updates.dtype, device=updates.device)


def _w(updates: Tensor, weights: Tensor | None) -> Tensor:
    return _uniform(updates) if weights is None else weights.to(updates.device, updates.dtype)


def mean(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Weighted mean ``sum_k p_k Delta_k`` (FedAvg, McMahan et al. 2017).

    Breakdown point 0: one arbitrary row moves the result arbitrarily far.
    """
    return _w(updates, weights) @ updates


def coordinate_median(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Coordinate-wise median (Yin, Chen, Ramchandran and Bartlett, ICML 2018, arXiv:1803.01498).

    Unweighted; for even n the mean of the two middle values. Breakdown point 1/2: with f < n/2
    arbitrary rows every coordinate stays within the honest rows' range of that coordinate.
    """
    n = updates.shape[0]
    if 2 * f >= n:
        raise FedsimError(f"aggregator median: needs f < n/2 Byzantine updates, got f={f} of n={n}")
    s = updates.sort(0).values
    return s[(n - 1) // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def trimmed_mean(updates: Tensor, weights: Tensor | None = None, f: int = 0, trim: int | None = None) -> Tensor:
    """Coordinate-wise trimmed mean (Yin et al. 2018, Definition 2): drop the ``b`` largest and
    ``b`` smallest values of each coordinate and average the rest (``b = trim``, default ``f``).

    Unweighted. Breakdown point ``b / n`` < 1/2: needs ``f <= b`` and ``2 b < n``.
    """
    n = updates.shape[0]
    b = f if trim is None else trim
    if 2 * b >= n or f > b:
        raise FedsimError(f"aggregator trimmed_mean: needs f <= trim < n/2, got f={f}, trim={b}, n={n}")
    s = updates.sort(0).values
    return s[b : n - b].mean(0)


def krum_scores(updates: Tensor, f: int) -> Tensor:
    """Krum's score of each row: the summed squared distance to its ``n - f - 2`` nearest others."""
    n = updates.shape[0]
    d2 = torch.cdist(updates.double(), updates.double()).pow(2)
    d2.fill_diagonal_(float("inf"))
    k = n - f - 2
    return d2.topk(k, dim=1, largest=False).values.sum(1)


def _check_krum(n: int, f: int, name: str) -> None:
    if n <= 2 * f + 2:
        raise FedsimError(f"aggregator {name}: needs n > 2f + 2 updates, got n={n}, f={f}")


def multi_krum(updates: Tensor, weights: Tensor | None = None, f: int = 0, m: int | None = None) -> Tensor:
    """Multi-Krum (Blanchard, El Mhamdi, Guerraoui and Stainer, NeurIPS 2017): the mean of the
    ``m`` rows with the lowest Krum score (``m = 1`` is Krum; default ``m = n - f``).

    Guarantee (their Proposition 1, (alpha, f)-Byzantine resilience) needs ``n > 2f + 2``.
    """
    n = updates.shape[0]
    _check_krum(n, f, "multi_krum")
    m = n - f if m is None else m
    if not 1 <= m <= n:
        raise FedsimError(f"aggregator multi_krum: m must be in 1..n={n}, got {m}")
    chosen = krum_scores(updates, f).argsort()[:m]
    return updates[chosen].mean(0)


def krum(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Krum (Blanchard et al. 2017): the row with the lowest score; needs ``n > 2f + 2``."""
    _check_krum(updates.shape[0], f, "krum")
    return updates[krum_scores(updates, f).argmin()]


def geometric_median(
    updates: Tensor, weights: Tensor | None = None, f: int = 0, nu: float = 1e-6, iterations: int = 100, tol: float = 1e-8
) -> Tensor:
    """Weighted geometric median ``argmin_z sum_k p_k ||z - Delta_k||`` by smoothed Weiszfeld.

    RFA (Pillutla, Kakade and Harchaoui, IEEE TSP 2022, arXiv:1912.13445), Algorithm 2:
    ``z <- sum_k beta_k Delta_k / sum_k beta_k`` with ``beta_k = p_k / max(nu, ||z - Delta_k||)``,
    from the weighted mean, until the objective changes by less than ``tol`` (relative).
    Breakdown point 1/2 (of the total weight).
    """
    w = _w(updates, weights).double()
    x = updates.double()
    z = w @ x
    obj = (w * (x - z).norm(dim=1)).sum()
    for _ in range(iterations):
        beta = w / (x - z).norm(dim=1).clamp_min(nu)
        z = beta @ x / beta.sum()
        new = (w * (x - z).norm(dim=1)).sum()
        if (obj - new).abs() <= tol * new.clamp_min(1e-30):
            break
        obj = new
    return z.to(updates.dtype)


def centered_clipping(
    updates: Tensor, weights: Tensor | None = None, f: int = 0, tau: float = 1.0, iterations: int = 3, center: Tensor | None = None
) -> Tensor:
    """Centered clipping (Karimireddy, He and Jaggi, ICML 2021, arXiv:2012.10333), eq. (CC):
    ``v <- v + sum_k p_k clip_tau(Delta_k - v)`` repeated ``iterations`` times, with
    ``clip_tau(u) = u min(1, tau / ||u||)``, from ``center`` (default the zero update; the paper
    starts from the previous round's momentum).

    Robust for a Byzantine fraction below about 0.1-0.2 with suitable ``tau`` (their Theorem III);
    with ``tau`` larger than every ``||Delta_k - v||`` one iteration is the weighted mean.
    """
    w = _w(updates, weights)
    v = torch.zeros_like(updates[0]) if center is None else center.to(updates)
    for _ in range(iterations):
        diff = updates - v
        norms = diff.norm(dim=1)
        scale = torch.where(norms > tau, tau / norms.clamp_min(1e-30), torch.ones_like(norms))
        v = v + (w * scale) @ diff
    return v


def bulyan(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Bulyan (El Mhamdi, Guerraoui and Rouault, ICML 2018, arXiv:1802.07927).

    Select ``theta = n - 2f`` rows by repeatedly taking the Krum winner of the remaining rows,
    then per coordinate average the ``beta = theta - 2f`` values closest to the coordinate's
    median. Needs ``n >= 4f + 3``.
    """
    n = updates.shape[0]
    if n < 4 * f + 3:
        raise FedsimError(f"aggregator bulyan: needs n >= 4f + 3 updates, got n={n}, f={f}")
    remaining = list(range(n))
    selected = []
    for _ in range(n - 2 * f):
        sub = updates[remaining]
        # Krum on the remaining set; its own n - f - 2 neighbour count shrinks with it.
        k_f = min(f, max(len(remaining) - 3, 0))
        best = int(krum_scores(sub, k_f).argmin()) if len(remaining) > 2 else 0
        selected.append(remaining.pop(best))
    s = updates[selected]
    beta = len(selected) - 2 * f
    med = coordinate_median(s, None, 0)
    closest = (s - med).abs().argsort(0)[:beta]
    return s.gather(0, closest).mean(0)


AGGREGATORS: dict[str, Callable[..., Tensor]] = {
    "mean": mean,
    "median": coordinate_median,
    "trimmed_mean": trimmed_mean,
    "krum": krum,
    "multi_krum": multi_krum,
    "geometric_median": geometric_median,
    "centered_clipping": centered_clipping,
    "bulyan": bulyan,
}


@dataclass(frozen=True)
class Aggregator:
    """A rule from :data:`AGGREGATORS` with its options and an assumed Byzantine fraction.

    Calling it on a cohort's ``(C, d)`` updates and weights gives the aggregate update, with
    ``f = floor(assumed_fraction * C)``.

    Parameters
    ----------
    kind : str
        A key of :data:`AGGREGATORS`.
    assumed_fraction : float (default: 0.0)
        The fraction of each cohort the rule is asked to tolerate.
    options : dict (default: {})
        Extra keyword arguments of the rule (``tau``, ``iterations``, ``m``, ``trim``, ``nu``).
    """

    kind: str = "mean"
    assumed_fraction: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in AGGREGATORS:
            raise FedsimError(f"algorithm.aggregator.kind: '{self.kind}' is unknown (allowed: {', '.join(AGGREGATORS)})")
        if not 0.0 <= self.assumed_fraction < 0.5:
            raise FedsimError(f"algorithm.aggregator.assumed_fraction: must be in [0, 0.5), got {self.assumed_fraction}")

    def num_byzantine(self, n: int) -> int:
        return int(math.floor(self.assumed_fraction * n + 1e-9))

    def __call__(self, updates: Tensor, weights: Tensor) -> Tensor:
        return AGGREGATORS[self.kind](updates, weights, f=self.num_byzantine(updates.shape[0]), **self.options)
