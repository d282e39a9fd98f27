"""Centered clipping (Karimireddy, He and Jaggi, ICML 2021, arXiv:2012.10333). Robust for a small
Byzantine fraction (about 0.1-0.2) with a suitable radius tau (their Theorem III)."""

from __future__ import annotations

import torch
from torch import Tensor

from fedsim.robustness.aggregators._base import weights_or_uniform

__all__ = ["centered_clipping"]


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
    w = weights_or_uniform(updates, weights)
    v = torch.zeros_like(updates[0]) if center is None else center.to(updates)
    for _ in range(iterations):
        diff = updates - v
        norms = diff.norm(dim=1)
        scale = torch.where(norms > tau, tau / norms.clamp_min(1e-30), torch.ones_like(norms))
        v = v + (w * scale) @ diff
    return v
