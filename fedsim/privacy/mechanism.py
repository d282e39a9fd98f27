"""The Gaussian mechanism: add ``N(0, (z G)^2 I)`` to a sum whose l2 sensitivity is G.

The noise multiplier ``z`` is the ratio of noise std to sensitivity, the quantity every
accountant (Opacus' included) is parameterized by. ``classic_gaussian_sigma`` is the one-shot
calibration of Dwork and Roth, Theorem A.1 (spec distributed-compression-privacy.md App. A.2).
"""

from __future__ import annotations

import math

import torch

from fedsim.errors import FedsimError

__all__ = ["check_noise_multiplier", "gaussian_noise", "add_gaussian_noise", "classic_gaussian_sigma"]


def check_noise_multiplier(noise_multiplier: float) -> float:
    """Return ``noise_multiplier`` as a float, raising a one-line error unless finite and >= 0."""
    z = float(noise_multiplier)
    if not (z >= 0 and math.isfinite(z)):
        raise FedsimError(f"noise multiplier must be a finite number >= 0, got {noise_multiplier}")
    return z


def gaussian_noise(shape: torch.Size | tuple[int, ...], std: float, generator: torch.Generator,
                   *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
    """A draw of ``N(0, std^2 I)`` of the given shape from ``generator`` (std = 0 gives zeros)."""
    if std < 0:
        raise FedsimError(f"noise std must be >= 0, got {std}")
    # Drawn on the generator's device, so a run's noise is the same on CPU and GPU.
    noise = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device)
    return (noise * std).to(device)


def add_gaussian_noise(total: torch.Tensor, *, noise_multiplier: float, sensitivity: float,
                       generator: torch.Generator) -> torch.Tensor:
    """Gaussian mechanism on a sum: ``total + N(0, (noise_multiplier * sensitivity)^2 I)``."""
    z = check_noise_multiplier(noise_multiplier)
    return total + gaussian_noise(total.shape, z * sensitivity, generator, dtype=total.dtype, device=total.device)


def classic_gaussian_sigma(*, sensitivity: float, epsilon: float, delta: float) -> float:
    """``sigma = Delta_2 sqrt(2 ln(1.25/delta)) / epsilon``: (epsilon, delta)-DP for epsilon in (0, 1).

    Dwork and Roth, The Algorithmic Foundations of Differential Privacy, Theorem A.1.
    """
    if not 0 < epsilon < 1:
        raise FedsimError(f"the classic Gaussian mechanism needs 0 < epsilon < 1, got {epsilon}")
    if not 0 < delta < 1:
        raise FedsimError(f"delta must lie in (0, 1), got {delta}")
    return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
