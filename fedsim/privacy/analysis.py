"""Pure privacy analysis: epsilon of the subsampled Gaussian mechanism, closed forms, slide theorems.

No state lives here (the stateful bookkeeping is :mod:`fedsim.privacy.accountant`). Each
sampling scheme is accounted by a library analysis made for it:

* ``poisson`` (each unit joins a step independently with probability q) and ``full`` (q = 1):
  Opacus' RDP (Mironov 2017; Mironov, Talwar, Zhang arXiv:1908.10530 for the sampled Gaussian,
  with the conversion of Balle et al. 2020, Theorem 21 of arXiv:1905.09982) or PRV (Gopi, Lee,
  Wutschitz 2021, arXiv:2106.02848), under add/remove-one adjacency: the l2 sensitivity of a
  sum of updates clipped to G is G, so the Gaussian's noise multiplier is z.
* ``uniform`` (a fixed number m = round(q N) of the N units, drawn without replacement): Google's
  ``dp-accounting`` RDP of ``SampledWithoutReplacementDpEvent`` (Wang, Balle, Kasiviswanathan,
  AISTATS 2019, arXiv:1808.00087, Theorem 27), which holds under replace-one adjacency (N is
  public, one unit is substituted). Substituting one clipped update moves the sum by up to 2G,
  so the Gaussian event gets noise multiplier z / 2. This is an upper bound on the RDP, not its
  exact value; ``dp-accounting``'s PLD accountant has no analysis of this event, so ``prv`` is
  refused for it.

Two noise theorems from lecture slides on DP-Fed-LS and DP-LSSGD (no published statement in this
form) are available only with a feasibility flag; neither is ever used to set noise silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from fedsim.errors import FedsimError
from fedsim.privacy.mechanism import check_noise_multiplier

if TYPE_CHECKING:
    import dp_accounting
    import dp_accounting.rdp

__all__ = [
    "ACCOUNTANTS",
    "SAMPLINGS",
    "ADJACENCY",
    "SENSITIVITY",
    "check_sampling",
    "check_scheme",
    "cohort_size",
    "RDP_ORDERS",
    "check_delta",
    "check_sample_rate",
    "check_steps",
    "check_accountant",
    "compute_epsilon",
    "epsilon_from_history",
    "wor_event",
    "wor_rdp_accountant",
    "rdp_full_batch",
    "gaussian_exact_epsilon",
    "SlideNoise",
    "slide_theorem_dpfedls",
    "slide_theorem_dpsgd",
]

ACCOUNTANTS = ("rdp", "prv")
SAMPLINGS = ("poisson", "uniform", "full")
#: The neighbouring relation each sampling scheme's analysis holds under.
ADJACENCY = {"poisson": "add/remove-one", "full": "add/remove-one", "uniform": "replace-one"}
#: l2 sensitivity of the sum of updates clipped to G, in units of G, under that relation.
SENSITIVITY = {"poisson": 1.0, "full": 1.0, "uniform": 2.0}

# Opacus' default orders, extended upwards: small target epsilons at delta = 1e-5 (the DP-LSSGD
# table goes down to 0.10) need orders above 63, and extra orders can only tighten the bound.
RDP_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 160, 192, 256, 384, 512, 1024]
)


# ---------------------------------------------------------------------------------------------
# INPUT CHECKS (one-line user errors)
# ---------------------------------------------------------------------------------------------


def check_delta(delta: float) -> float:
    """``delta`` as a float; raises unless 0 < delta < 1."""
    if not 0 < float(delta) < 1:
        raise FedsimError(f"privacy delta must lie in (0, 1), got {delta}")
    return float(delta)


def check_sample_rate(sample_rate: float) -> float:
    """``sample_rate`` as a float; raises unless 0 < q <= 1."""
    if not 0 < float(sample_rate) <= 1:
        raise FedsimError(f"sample rate q must lie in (0, 1], got {sample_rate}")
    return float(sample_rate)


def check_steps(steps: int) -> int:
    """``steps`` as an int; raises unless it is a whole number >= 0."""
    if int(steps) != steps or steps < 0:
        raise FedsimError(f"steps must be a whole number >= 0, got {steps}")
    return int(steps)


def check_accountant(accountant: str) -> str:
    """``accountant`` if it is one of :data:`ACCOUNTANTS`."""
    if accountant not in ACCOUNTANTS:
        raise FedsimError(f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}")
    return accountant


def check_sampling(sampling: str) -> str:
    """``sampling`` if it is one of :data:`SAMPLINGS`."""
    if sampling not in SAMPLINGS:
        raise FedsimError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    return sampling


def cohort_size(sample_rate: float, population: int | None) -> int:
    """m = round(q N): the fixed number of units sampled without replacement per step."""
    if population is None or int(population) != population or population < 1:
        raise FedsimError(f"uniform sampling needs the population size N (--population; in a run the number of clients "
                          f"or examples), a whole number >= 1, got {population}")
    m = round(check_sample_rate(sample_rate) * int(population))
    if m < 1:
        raise FedsimError(f"uniform sampling: round(q N) = round({sample_rate} * {population}) = 0 units per step")
    return int(m)


def check_scheme(sampling: str, accountant: str, entries: Sequence[tuple[float, float, int]]) -> None:
    check_sampling(sampling)
    check_accountant(accountant)
    if sampling == "full" and any(q != 1 for _, q, _ in entries):
        raise FedsimError("sampling 'full' means q = 1 (every unit in every step); use poisson or uniform for q < 1")
    if sampling == "uniform" and accountant != "rdp":
        raise FedsimError(f"privacy.accountant / --accountant {accountant!r} has no analysis of sampling without "
                          "replacement (dp-accounting's PLD covers Poisson sampling only); use rdp, or Poisson sampling")


# ---------------------------------------------------------------------------------------------
# NUMERICAL ACCOUNTING (Opacus for Poisson and q = 1, dp-accounting for sampling without replacement)
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _rdp_per_step(noise_multiplier: float, sample_rate: float) -> np.ndarray:
    from opacus.accountants.analysis.rdp import compute_rdp

    return np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(RDP_ORDERS)))


def wor_event(*, noise_multiplier: float, cohort: int, population: int, steps: int = 1) -> "dp_accounting.DpEvent":
    """``steps`` Gaussian releases on a cohort of ``cohort`` of ``population`` units drawn without replacement.

    The event ``dp-accounting`` accounts under replace-one adjacency: its Gaussian carries the
    noise multiplier relative to the replace-one sensitivity 2G, i.e. z / 2.
    """
    import dp_accounting

    gauss = dp_accounting.GaussianDpEvent(noise_multiplier / SENSITIVITY["uniform"])
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.SampledWithoutReplacementDpEvent(int(population), int(cohort), gauss), int(steps))


def wor_rdp_accountant() -> "dp_accounting.rdp.RdpAccountant":
    """A fresh ``dp-accounting`` RDP accountant over :data:`RDP_ORDERS` under replace-one adjacency."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    return RdpAccountant(orders=list(RDP_ORDERS), neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)


@lru_cache(maxsize=64)
def _wor_rdp_per_step(noise_multiplier: float, cohort: int, population: int) -> np.ndarray:
    # RDP is additive over steps, so one step's curve, cached, serves every round's epsilon
    # (dp-accounting recomputes the O(alpha^2) bound on every compose, ~0.5 s on this machine).
    acc = wor_rdp_accountant()
    acc.compose(wor_event(noise_multiplier=noise_multiplier, cohort=cohort, population=population))
    return np.asarray(acc._rdp, dtype=float)  # noqa: SLF001 -- no public getter for the RDP curve


def epsilon_from_history(history: Iterable[tuple[float, float, int]], *, delta: float, accountant: str = "rdp",
                         sampling: str = "poisson", population: int | None = None) -> float:
    """Epsilon after composing the history ``[(noise_multiplier, sample_rate, steps), ...]``.

    Parameters
    ----------
    history : iterable of (float, float, int)
        Run-length encoded steps of the subsampled Gaussian mechanism.
    delta : float
        Target delta in (0, 1).
    accountant : {"rdp", "prv"}
        ``prv`` is Opacus' PRVAccountant (its upper bound, as Opacus returns; Poisson and full
        sampling only).
    sampling : {"poisson", "full", "uniform"}
        ``poisson`` (rate q) and ``full`` (q = 1): add/remove-one adjacency, Opacus; ``uniform``
        (round(q N) of N units without replacement): replace-one adjacency, dp-accounting's RDP
        over :data:`RDP_ORDERS`.
    population : int, optional
        N, the number of privacy units; required by ``uniform``.

    Returns
    -------
    float
        Epsilon; 0 for an empty history, ``inf`` if any step had zero noise.
    """
    from opacus.accountants import create_accountant

    delta = check_delta(delta)
    entries = [(check_noise_multiplier(z), check_sample_rate(q), check_steps(t)) for z, q, t in history]
    check_scheme(sampling, accountant, entries)
    if sampling == "uniform":
        for _, q, _ in entries:  # a bad population is an error even before the first step
            cohort_size(q, population)
    entries = [e for e in entries if e[2] > 0]
    if not entries:
        return 0.0
    if any(z == 0 for z, _, _ in entries):
        return math.inf
    if sampling == "uniform":
        from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon as rdp_to_dp

        assert population is not None  # cohort_size refused a missing population above
        rdp = sum((t * _wor_rdp_per_step(z, cohort_size(q, population), int(population)) for z, q, t in entries), np.zeros(()))
        eps, _ = rdp_to_dp(list(RDP_ORDERS), rdp, delta)
    elif accountant == "rdp":
        # Opacus' RDPAccountant computes sum_i steps_i * rdp(z_i, q_i); caching the per-step
        # curve keeps a per-round epsilon cheap over thousands of rounds.
        from opacus.accountants.analysis.rdp import get_privacy_spent

        rdp = sum((t * _rdp_per_step(z, q) for z, q, t in entries), np.zeros(()))  # sum()'s 0, typed as an array
        eps, _ = get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=delta)
    else:
        acc = create_accountant(accountant)
        acc.history = entries
        # q = 1 makes Opacus' PRV take log(0) on an empty region it then discards.
        with np.errstate(divide="ignore"):
            eps = acc.get_epsilon(delta=delta)
    # The RDP conversion can dip below 0 at large orders and delta; (0, delta)-DP is the floor.
    return max(float(eps), 0.0)


def compute_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                    accountant: str = "rdp", sampling: str = "poisson", population: int | None = None) -> float:
    """Epsilon of ``steps`` subsampled Gaussian steps at rate q and noise multiplier z.

    User-level DP-Fed-LS: q = clients sampled per round / K, one step per round, z = noise std
    on the sum / G. Sample-level DP-SGD: q = batch / n, one step per minibatch. ``sampling`` and
    ``population`` as in :func:`epsilon_from_history`.
    """
    return epsilon_from_history([(noise_multiplier, sample_rate, steps)], delta=delta, accountant=accountant,
                                sampling=sampling, population=population)


# ---------------------------------------------------------------------------------------------
# CLOSED FORMS (test oracles)
# ---------------------------------------------------------------------------------------------


def rdp_full_batch(*, noise_multiplier: float, steps: int, orders: Sequence[float] = RDP_ORDERS) -> np.ndarray:
    """RDP of ``steps`` Gaussian mechanisms without subsampling (q = 1): ``T alpha / (2 z^2)``.

    Mironov 2017, Proposition 7 (Gaussian mechanism) and Proposition 1 (composition).
    """
    z = check_noise_multiplier(noise_multiplier)
    return np.asarray(orders, dtype=float) * check_steps(steps) / (2 * z**2)


def gaussian_exact_epsilon(*, noise_multiplier: float, steps: int, delta: float) -> float:
    """Exact epsilon of T unsampled Gaussian mechanisms, as one ``mu``-GDP mechanism with ``mu = sqrt(T)/z``.

    Solves ``delta = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)`` (Balle and Wang 2018,
    Theorem 8; Dong, Roth and Su 2019, Corollary 2.13). Any valid accountant must return at least this.
    """
    from scipy.optimize import brentq
    from scipy.stats import norm

    delta = check_delta(delta)
    mu = math.sqrt(check_steps(steps)) / check_noise_multiplier(noise_multiplier)

    def excess(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    if excess(0.0) <= 0:
        return 0.0
    hi = 1.0
    while excess(hi) > 0:
        hi *= 2
    return float(brentq(excess, 0.0, hi, xtol=1e-12))


# ---------------------------------------------------------------------------------------------
# THEOREMS AS PRINTED ON THE SLIDES (never used silently)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlideNoise:
    """A noise level from a slide theorem, whether its conditions hold, and why it is not trusted."""

    nu: float
    feasible: bool
    note: str


_DPFEDLS_NOTE = (
    "slide theorem 'Privacy Budget for DP-Fed-LS' (nu >= 4 tau G / eps): as transcribed its two "
    "conditions on eps can never hold together (spec §3.3) and nu lacks the sqrt(T log(1/delta)) "
    "factor of subsampled-Gaussian composition; fedsim sets noise with Opacus' accountant instead"
)


def slide_theorem_dpfedls(*, tau: float, clip_norm: float, epsilon: float, delta: float, rounds: int) -> SlideNoise:
    """``nu = 4 tau G / epsilon`` and the theorem's two admissibility conditions (lecture slides, unpublished).

    Conditions: ``(2 log(1/delta) + (1 + tau) eps)^2 <= 3 (1 - tau) eps^3 / (8 tau^2 T)`` and
    ``eps <= tau sqrt(8 T log(1/delta) / 3)``. They are contradictory as printed, so ``feasible``
    is always False; the result is informational only.
    """
    check_delta(delta)
    tau = check_sample_rate(tau)
    log_d = math.log(1 / delta)
    first = (2 * log_d + (1 + tau) * epsilon) ** 2 <= 3 * (1 - tau) * epsilon**3 / (8 * tau**2 * rounds)
    second = epsilon <= tau * math.sqrt(8 * rounds / 3 * log_d)
    return SlideNoise(nu=4 * tau * clip_norm / epsilon, feasible=bool(first and second), note=_DPFEDLS_NOTE)


def slide_theorem_dpsgd(*, steps: int, n: int, batch_size: int, clip_norm: float, epsilon: float, delta: float,
                        mu: float = 0.5) -> SlideNoise:
    """``nu^2 = 20 T a G^2 / (mu n^2 eps)``, ``a = log(1/delta) / ((1 - mu) eps) + 1`` (DP-SGD slide theorem).

    Conditions: ``a <= log(mu n^3 eps / (5 b^3 T a + mu b n^2 eps))`` and
    ``5 b^2 T a / (mu n^2 eps) >= 1.5``. The DP-LSSGD reference code's noise levels come from the
    formula with the conditions violated, which ``feasible`` reports.
    """
    check_delta(delta)
    a = math.log(1 / delta) / ((1 - mu) * epsilon) + 1
    nu = math.sqrt(20 * steps * a * clip_norm**2 / (mu * n**2 * epsilon))
    b = batch_size
    first = a <= math.log(mu * n**3 * epsilon / (5 * b**3 * steps * a + mu * b * n**2 * epsilon))
    second = 5 * b**2 * steps * a / (mu * n**2 * epsilon) >= 1.5
    note = "slide DP-SGD theorem: " + ("conditions hold" if first and second else
                                        "its conditions do not hold here, so it gives no guarantee")
    return SlideNoise(nu=nu, feasible=bool(first and second), note=note)
