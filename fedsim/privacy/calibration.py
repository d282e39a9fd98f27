"""Noise calibration: the smallest noise multiplier whose accounted epsilon stays <= a target.

Wraps Opacus' ``get_noise_multiplier`` (doubling, then bisection; it returns the upper end of
the bracket, so the result never overshoots the target) with fedsim's RDP orders and one-line
errors.
"""

from __future__ import annotations

import math

from fedsim.errors import FedsimError
from fedsim.privacy.analysis import RDP_ORDERS, check_accountant, check_delta, check_sample_rate, check_steps

__all__ = ["calibrate_noise_multiplier"]


def calibrate_noise_multiplier(*, target_epsilon: float, delta: float, sample_rate: float, steps: int,
                               accountant: str = "rdp", tolerance: float = 0.01) -> float:
    """Noise multiplier z with ``epsilon(z, q, steps, delta) <= target_epsilon`` (within ``tolerance`` of it).

    Raises:
        FedsimError: bad inputs, or a target no noise below 1e6 reaches.
    """
    from opacus.accountants.utils import get_noise_multiplier

    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise FedsimError(f"target epsilon must be a finite number > 0, got {target_epsilon}")
    delta = check_delta(delta)
    q = check_sample_rate(sample_rate)
    if check_steps(steps) < 1:
        raise FedsimError(f"noise calibration needs steps >= 1, got {steps}")
    check_accountant(accountant)
    kwargs = {"alphas": list(RDP_ORDERS)} if accountant == "rdp" else {}
    try:
        return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta, sample_rate=q,
                                          steps=int(steps), accountant=accountant,
                                          epsilon_tolerance=tolerance, **kwargs))
    except ValueError as err:
        raise FedsimError(
            f"target epsilon {target_epsilon} is unreachable with delta={delta}, q={q}, steps={steps} "
            f"and the {accountant} accountant (no noise multiplier up to 1e6 attains it): {err}"
        ) from None
