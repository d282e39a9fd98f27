"""Laplacian smoothing ``A_sigma^{-1} g`` by real FFT (Wang et al., LS-GD arXiv:1806.06317; DP-LSSGD).

``A_sigma = I - sigma L`` is the periodic (circulant) matrix with first column
``(1 + 2 sigma, -sigma, 0, ..., 0, -sigma)``; its eigenvalues are

    lambda_k = 1 + 2 sigma - 2 sigma cos(2 pi k / d) = 1 + 4 sigma sin^2(pi k / d),

and the order-n operator ``I + (-1)^n sigma Delta^n`` has ``lambda_k = 1 + sigma (4 sin^2(pi k/d))^n``.
Smoothing divides the DFT of ``g`` by ``lambda_k`` (the circulant solve of LS-GD, Section 2).
The eigenvalue formula is used for every d >= 1: d = 1 is the identity, and d = 2 gives
``{1, 1 + 4 sigma}`` as the displayed (dense) matrix does. This deliberately differs from the
authors' stencil code, which writes ``c[1]`` and ``c[-1]`` to the same slot at d = 2 and so gives
``{1 + sigma, 1 + 3 sigma}``: fedsim keeps the matrix's operator. sigma = 0 is the identity. Smoothing is post-processing,
so it never changes a privacy guarantee.

Modes: ``per_tensor`` (default, as the authors' code: each parameter tensor's flat slice is
smoothed on its own) and ``global_flat`` (the theory's single d-vector).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal, Sequence

import torch

from fedsim.errors import FedsimError

__all__ = ["SmoothingMode", "ls_eigenvalues", "laplacian_smooth", "smooth_flat", "ls_gamma", "ls_beta"]

SmoothingMode = Literal["per_tensor", "global_flat"]


def _check(sigma: float, order: int) -> None:
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise FedsimError(f"smoothing sigma must be a finite number >= 0, got {sigma}")
    if int(order) != order or order < 1:
        raise FedsimError(f"smoothing order must be an integer >= 1, got {order}")


@lru_cache(maxsize=256)
def _eigenvalues_rfft(d: int, sigma: float, order: int) -> torch.Tensor:
    k = torch.arange(d // 2 + 1, dtype=torch.float64)
    return 1.0 + sigma * (4.0 * torch.sin(math.pi * k / d) ** 2) ** order


def ls_eigenvalues(d: int, sigma: float, order: int = 1) -> torch.Tensor:
    """Eigenvalues ``lambda_k``, k = 0..d//2, of the order-``order`` smoothing matrix (float64, cached).

    Only the rfft half-spectrum is returned; ``lambda_k = lambda_{d-k}`` gives the rest.
    """
    _check(sigma, order)
    if d < 1:
        raise FedsimError(f"smoothing needs a vector length d >= 1, got {d}")
    return _eigenvalues_rfft(int(d), float(sigma), int(order))


def laplacian_smooth(g: torch.Tensor, sigma: float, order: int = 1) -> torch.Tensor:
    """``A_sigma^{-1} g`` along the last dimension: ``irfft(rfft(g) / lambda)``.

    ``A_sigma = I - sigma L`` with ``L`` the periodic 1-D discrete Laplacian is circulant, so the
    solve is a division in the Fourier basis (Osher et al., "Laplacian Smoothing Gradient
    Descent", arXiv:1806.06317, Section 2).

    Parameters
    ----------
    g : Tensor
        ``(..., d)``; every row along the last dimension is smoothed on its own.
    sigma : float
        Smoothing strength >= 0 (0 is the identity).
    order : int, default 1
        Power n of the Laplacian (1 is ``A_sigma`` itself).

    Returns
    -------
    Tensor
        The same shape and dtype as ``g``.
    """
    _check(sigma, order)
    d = g.shape[-1]
    if sigma == 0 or d == 1:
        return g.clone()
    lam = ls_eigenvalues(d, sigma, order).to(device=g.device, dtype=g.dtype)
    return torch.fft.irfft(torch.fft.rfft(g) / lam, n=d)


def smooth_flat(
    flat: torch.Tensor,
    sigma: float,
    *,
    order: int = 1,
    mode: SmoothingMode = "per_tensor",
    sizes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Smooth a flat parameter vector (or a ``(C, d)`` stack of them) in the given mode.

    Parameters
    ----------
    flat : Tensor
        ``(d,)`` or ``(C, d)`` flat parameters or updates.
    sigma : float
        Smoothing strength >= 0.
    order : int, default 1
        Laplacian power.
    mode : {"per_tensor", "global_flat"}
        ``per_tensor`` smooths each consecutive slice of length ``sizes[i]`` (the model's tensors
        in flattening order); ``global_flat`` smooths the whole length-d vector.
    sizes : sequence of int, optional
        Numel of each parameter tensor, summing to d; required for ``per_tensor``.
    """
    if mode == "global_flat":
        return laplacian_smooth(flat, sigma, order)
    if mode != "per_tensor":
        raise FedsimError(f"smoothing mode must be 'per_tensor' or 'global_flat', got {mode!r}")
    if sizes is None or sum(sizes) != flat.shape[-1]:
        raise FedsimError(f"per_tensor smoothing needs tensor sizes summing to {flat.shape[-1]}, got {sizes}")
    parts = torch.split(flat, list(sizes), dim=-1)
    return torch.cat([laplacian_smooth(p, sigma, order) for p in parts], dim=-1)


def _ls_ratio(sigma: float) -> float:
    # Often called alpha; renamed so it is not confused with an RDP order.
    return (2 * sigma + 1 - math.sqrt(4 * sigma + 1)) / (2 * sigma)


def ls_gamma(d: int, sigma: float) -> float:
    """``gamma = (1/d) sum_k 1/lambda_k = (1 + r^d) / ((1 - r^d) sqrt(4 sigma + 1))`` (DP-LSSGD's utility bounds).

    ``r = (2 sigma + 1 - sqrt(4 sigma + 1)) / (2 sigma)``; equals ``E[n^T A^{-1} n] / (nu^2 d)``
    (Wang, Gu, Boedihardjo, Wang, Barekat and Osher, "DP-LSSGD: A Stochastic Optimization Method to Lift the
    Utility in Privacy-Preserving ERM" (arXiv:1906.12056)).
    """
    if sigma == 0:
        return 1.0
    r = _ls_ratio(sigma)
    return (1 + r**d) / ((1 - r**d) * math.sqrt(4 * sigma + 1))


def ls_beta(d: int, sigma: float) -> float:
    """``beta = (1/d) sum_k 1/lambda_k^2`` in closed form, so ``E||A^{-1} n||^2 = nu^2 d beta``.

    ``beta = (2 r^{2d+1} - xi r^{2d} + 2 xi d r^d - 2 r + xi) / (sigma^2 xi^3 (1 - r^d)^2)`` with
    ``xi = -sqrt(1 + 4 sigma) / sigma`` (Wang et al., DP-LSSGD, arXiv:1906.12056).
    """
    if sigma == 0:
        return 1.0
    r = _ls_ratio(sigma)
    xi = -math.sqrt(1 + 4 * sigma) / sigma
    num = 2 * r ** (2 * d + 1) - xi * r ** (2 * d) + 2 * xi * d * r**d - 2 * r + xi
    return num / (sigma**2 * xi**3 * (1 - r**d) ** 2)
