"""l2 clipping: ``clip(v) = v / max(1, ||v||_2 / G)`` (DP-Fed-LS pseudocode; Abadi et al. 2016).

One function serves both uses: per-sample gradients ``(B, d)`` are clipped row by row, a flat
client update ``(d,)`` (user-level DP-Fed-LS) as one vector. The factor is
``G (1 - 1e-6) / ||v||`` capped at 1: the relative margin (Opacus and the reference code use an
absolute ``+1e-6`` on the norm, too small for norms above ~10 in float32) keeps the clipped
norm, hence the sensitivity, at most G despite float32 rounding.
"""

from __future__ import annotations

import torch

from fedsim.errors import FedsimError

__all__ = ["clip_l2", "check_clip_norm"]

_MARGIN = 1.0 - 1e-6


def check_clip_norm(max_norm: float) -> float:
    """Return ``max_norm`` as a float, raising a one-line error unless it is finite and > 0."""
    if not (float(max_norm) > 0 and float(max_norm) < float("inf")):
        raise FedsimError(f"clip norm G must be a finite number > 0, got {max_norm}")
    return float(max_norm)


def clip_l2(x: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale every vector along the last dimension of ``x`` to l2 norm at most ``max_norm``.

    Parameters
    ----------
    x : Tensor
        ``(d,)`` (one update) or ``(..., d)`` (e.g. per-sample gradients, one row each).
    max_norm : float
        The clip bound G > 0.

    Returns
    -------
    Tensor
        ``x * min(1, G (1 - 1e-6) / ||x||_2)`` row-wise, same shape and dtype.
    """
    g = check_clip_norm(max_norm)
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x * (g * _MARGIN / norms).clamp(max=1.0)
