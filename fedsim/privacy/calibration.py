"""Noise calibration: the smallest noise multiplier whose accounted epsilon stays <= a target.

The search runs on the same analysis the run's ledger uses (:mod:`fedsim.privacy.analysis`):

* Poisson and full sampling: Opacus' ``get_noise_multiplier`` (doubling, then bisection; it
  returns the upper end of the bracket, so the result never overshoots the target) with
  fedsim's RDP orders.
* Uniform sampling without replacement: ``dp-accounting``'s ``calibrate_dp_mechanism`` (Brent's
  method, then a check that keeps the returned value on the private side of the target) on the
  replace-one ``SampledWithoutReplacementDpEvent`` of :func:`fedsim.privacy.analysis.wor_event`.
"""

from __future__ import annotations

import math
from functools import lru_cache

from fedsim.errors import FedsimError
from fedsim.privacy.analysis import (
    RDP_ORDERS,
    check_scheme,
    check_accountant,
    check_delta,
    check_sample_rate,
    check_steps,
    cohort_size,
    compute_epsilon,
    wor_event,
    wor_rdp_accountant,
)

__all__ = ["calibrate_noise_multiplier"]

_MAX_NOISE = 1e6


def _unreachable(target_epsilon: float, delta: float, q: float, steps: int, what: str, err: object = "") -> FedsimError:
    return FedsimError(
        f"target epsilon {target_epsilon} is unreachable with delta={delta}, q={q}, steps={steps} "
        f"and the {what} accountant (no noise multiplier up to {_MAX_NOISE:g} attains it){': ' if err else ''}{err}"
    )


def _calibrate_uniform(target_epsilon: float, delta: float, q: float, steps: int, population: int | None,
                       tolerance: float) -> float:
    import dp_accounting

    m = cohort_size(q, population)
    n = int(population)  # type: ignore[arg-type]  # cohort_size checked it

    def eps(z: float) -> float:
        return compute_epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=delta, sampling="uniform",
                               population=n)

    # An explicit bracket [lo, hi] with eps(hi) <= target (dp-accounting's own search would
    # evaluate z = 0, where the event is not private).
    hi = 1.0
    while eps(hi) > target_epsilon:
        hi *= 2
        if hi > _MAX_NOISE:
            raise _unreachable(target_epsilon, delta, q, steps, "dp-accounting rdp (sampling without replacement)")
    lo = hi / 2
    while lo > 1e-3 and eps(lo) <= target_epsilon:
        lo, hi = lo / 2, lo
    if eps(lo) <= target_epsilon:
        return lo
    z = dp_accounting.calibrate_dp_mechanism(
        wor_rdp_accountant,
        lambda z: wor_event(noise_multiplier=z, cohort=m, population=n, steps=steps),
        target_epsilon, delta, bracket_interval=dp_accounting.ExplicitBracketInterval(lo, hi),
        tol=tolerance * lo / 10,
    )
    return float(z)


@lru_cache(maxsize=128)  # a pure function of scalars; sweeps and repeated seeds ask the same question
def calibrate_noise_multiplier(*, target_epsilon: float, delta: float, sample_rate: float, steps: int,
                               accountant: str = "rdp", tolerance: float = 0.01, sampling: str = "poisson",
                               population: int | None = None) -> float:
    """Noise multiplier z with ``epsilon(z, q, steps, delta) <= target_epsilon``, close to the smallest such z.

    Parameters
    ----------
    target_epsilon : float
        Epsilon to reach after ``steps`` steps.
    delta : float
        Target delta in (0, 1).
    sample_rate : float
        q per step.
    steps : int
        Number of steps (>= 1).
    accountant : {"rdp", "prv"}
        The analysis.
    tolerance : float, default 0.01
        Poisson/full: epsilon within ``tolerance`` below the target (Opacus); uniform: z within
        ``tolerance / 10`` times the bracket's lower end of the optimum.
    sampling : {"poisson", "uniform", "full"}
        As in :func:`fedsim.privacy.analysis.epsilon_from_history`.
    population : int, optional
        N, the number of privacy units; required by ``uniform``.

    Raises
    ------
    FedsimError
        Bad inputs, or a target no noise below 1e6 reaches.
    """
    from opacus.accountants.utils import get_noise_multiplier

    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise FedsimError(f"target epsilon must be a finite number > 0, got {target_epsilon}")
    delta = check_delta(delta)
    q = check_sample_rate(sample_rate)
    if check_steps(steps) < 1:
        raise FedsimError(f"noise calibration needs steps >= 1, got {steps}")
    check_accountant(accountant)
    check_scheme(sampling, accountant, [(1.0, q, steps)])
    if sampling == "uniform":
        return _calibrate_uniform(target_epsilon, delta, q, int(steps), population, tolerance)
    kwargs = {"alphas": list(RDP_ORDERS)} if accountant == "rdp" else {}
    try:
        return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta, sample_rate=q,
                                          steps=int(steps), accountant=accountant,
                                          epsilon_tolerance=tolerance, **kwargs))
    except ValueError as err:
        raise _unreachable(target_epsilon, delta, q, steps, accountant, err) from None
