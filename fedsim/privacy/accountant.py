"""Stateful privacy bookkeeping for a run: the history of (noise multiplier, sample rate, steps).

As Opacus' ``IAccountant``: the state is only a run-length encoded history; epsilon is computed
from it by the pure functions in :mod:`fedsim.privacy.analysis`, with the analysis made for the
run's sampling scheme. The accountant also records what the number means (user- or
sample-level unit, sampling scheme, adjacency, which library's analysis, exact or an upper
bound), and writes that into the run's privacy ledger.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from fedsim.errors import FedsimError
from fedsim.privacy.analysis import (
    ADJACENCY,
    SENSITIVITY,
    check_scheme,
    check_accountant,
    check_delta,
    check_sample_rate,
    check_sampling,
    check_steps,
    cohort_size,
    epsilon_from_history,
)
from fedsim.privacy.mechanism import check_noise_multiplier

__all__ = ["Sampling", "Unit", "PrivacyAccountant", "accountant_name", "is_exact", "sampling_note"]

Sampling = Literal["poisson", "uniform", "full"]
Unit = Literal["user", "sample"]


def _units(unit: Unit) -> tuple[str, str]:
    return ("client", "K") if unit == "user" else ("example", "n")


def is_exact(sampling: Sampling) -> bool:
    """True when the accountant computes the RDP (or PRV) of this very mechanism, not a bound on it.

    Poisson sampling and q = 1 are accounted exactly (the (epsilon, delta) conversion is then the
    only slack); sampling without replacement only through an upper bound on its RDP.
    """
    return check_sampling(sampling) != "uniform"


def accountant_name(sampling: Sampling, accountant: str) -> str:
    """The library analysis behind the number, e.g. ``opacus-rdp`` or ``dp-accounting-rdp``."""
    check_accountant(accountant)
    return ("dp-accounting-" if check_sampling(sampling) == "uniform" else "opacus-") + accountant


def sampling_note(sampling: Sampling, unit: Unit) -> str:
    """The label every output carries: what was sampled, the adjacency, and how exact the number is."""
    one, total = _units(unit)
    if sampling == "poisson":
        return (f"exact: Poisson sampling (each {one} joins a step with probability q), add/remove-one-{one} "
                f"adjacency (sensitivity G); Opacus computes the RDP/PRV of this mechanism, epsilon is its "
                f"(epsilon, delta) conversion")
    if sampling == "full":
        return (f"exact: every {one} in every step (q = 1, no subsampling), add/remove-one-{one} adjacency "
                f"(sensitivity G); Gaussian RDP in closed form (Opacus)")
    if sampling == "uniform":
        return (f"upper bound: a fixed m = round(q {total}) of the {total} {one}s sampled without replacement, "
                f"replace-one-{one} adjacency (substitution, sensitivity 2G); dp-accounting's RDP bound of Wang, "
                f"Balle, Kasiviswanathan 2019 (Theorem 27), valid but not tight")
    raise FedsimError(f"sampling must be 'poisson', 'uniform' or 'full', got {sampling!r}")


class PrivacyAccountant:
    """Privacy spent by a run of subsampled Gaussian steps.

    Parameters
    ----------
    delta : float
        Target delta in (0, 1).
    accountant : str (default: "rdp")
        ``rdp`` or ``prv`` (``prv``: Poisson and full sampling only).
    sampling : str (default: "poisson")
        ``poisson`` or ``full`` (Opacus, add/remove-one, exact) or ``uniform`` (fixed-size
        cohorts without replacement; dp-accounting, replace-one, an RDP upper bound).
    unit : str (default: "user")
        ``user`` (one step per round, q = client sampling rate) or ``sample`` (DP-SGD steps).
    population : int or None (default: None)
        N, the number of privacy units (clients K or examples n); required by ``uniform``,
        whose cohort is round(q N).
    """

    def __init__(self, *, delta: float, accountant: str = "rdp", sampling: Sampling = "poisson",
                 unit: Unit = "user", population: int | None = None) -> None:
        self.delta = check_delta(delta)
        self.accountant = check_accountant(accountant)
        self.note = sampling_note(sampling, unit)
        check_scheme(sampling, accountant, [])
        self.sampling = sampling
        self.unit = unit
        self.population = population
        if sampling == "uniform":
            cohort_size(1.0, population)  # fails early without N
        self.history: list[tuple[float, float, int]] = []

    def _epsilon(self, history: list[tuple[float, float, int]]) -> float:
        return epsilon_from_history(history, delta=self.delta, accountant=self.accountant, sampling=self.sampling,
                                    population=self.population)

    def step(self, *, noise_multiplier: float, sample_rate: float, steps: int = 1) -> None:
        """Record ``steps`` mechanism steps, merged with the last entry when it has the same (z, q)."""
        z, q, t = check_noise_multiplier(noise_multiplier), check_sample_rate(sample_rate), check_steps(steps)
        if self.history and self.history[-1][:2] == (z, q):
            self.history[-1] = (z, q, self.history[-1][2] + t)
        else:
            self.history.append((z, q, t))

    @property
    def steps(self) -> int:
        """Total steps recorded."""
        return sum(t for _, _, t in self.history)

    def epsilon(self) -> float:
        """Epsilon spent so far at this accountant's delta."""
        return self._epsilon(self.history)

    def epsilon_after(self, *, noise_multiplier: float, sample_rate: float, steps: int = 1) -> float:
        """Epsilon if ``steps`` more steps were taken; used to stop before a budget is exceeded."""
        extra = [(check_noise_multiplier(noise_multiplier), check_sample_rate(sample_rate), check_steps(steps))]
        return self._epsilon(self.history + extra)

    def ledger(self) -> dict[str, Any]:
        """The privacy ledger written into summary.json."""
        eps = self.epsilon()
        zs = sorted({z for z, _, _ in self.history})
        qs = sorted({q for _, q, _ in self.history})
        out = {
            "epsilon": eps if math.isfinite(eps) else None,
            "delta": self.delta,
            "accountant": self.accountant,
            "analysis": accountant_name(self.sampling, self.accountant),
            "noise_multiplier": zs[0] if len(zs) == 1 else zs,
            "sample_rate": qs[0] if len(qs) == 1 else qs,
            "steps": self.steps,
            "unit": self.unit,
            "sampling": self.sampling,
            "adjacency": ADJACENCY[self.sampling],
            "sensitivity_over_clip": SENSITIVITY[self.sampling],
            "exact": is_exact(self.sampling),
            "note": self.note,
            "history": [list(h) for h in self.history],
        }
        if self.population is not None:
            out["population"] = self.population
        if self.sampling == "uniform" and len(qs) == 1:
            out["cohort_size"] = cohort_size(qs[0], self.population)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume accounting (e.g. from a checkpoint)."""
        return {"delta": self.delta, "accountant": self.accountant, "sampling": self.sampling, "unit": self.unit,
                "population": self.population, "history": [list(h) for h in self.history]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "PrivacyAccountant":
        """Rebuild an accountant from :meth:`state_dict` or a ledger."""
        acc = cls(delta=state["delta"], accountant=state["accountant"], sampling=state["sampling"], unit=state["unit"],
                  population=state.get("population"))
        for z, q, t in state["history"]:
            acc.step(noise_multiplier=z, sample_rate=q, steps=int(t))
        return acc
