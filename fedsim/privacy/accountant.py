"""Stateful privacy bookkeeping for a run: the history of (noise multiplier, sample rate, steps).

As Opacus' ``IAccountant``: the state is only a run-length encoded history; epsilon is computed
from it by the pure functions in :mod:`fedsim.privacy.analysis`. The accountant also records
what the number means (user- or sample-level unit, sampling scheme, exact or approximate), and
writes that into the run's privacy ledger.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from fedsim.errors import FedsimError
from fedsim.privacy.analysis import (
    check_accountant,
    check_delta,
    check_sample_rate,
    check_steps,
    epsilon_from_history,
)
from fedsim.privacy.mechanism import check_noise_multiplier

__all__ = ["Sampling", "Unit", "PrivacyAccountant", "sampling_note"]

Sampling = Literal["poisson", "uniform", "full"]
Unit = Literal["user", "sample"]

_UNIFORM_NOTE = (
    "approximate: sampling without replacement of a fixed number m of {units} is accounted as "
    "Poisson sampling with q = m/{total}; Opacus' analysis is exact only for Poisson sampling"
)


def sampling_note(sampling: Sampling, unit: Unit) -> str:
    """The label every output carries: exact for Poisson sampling, approximate for uniform."""
    if sampling == "poisson":
        return "exact: Poisson sampling, add/remove-one-{} adjacency".format("client" if unit == "user" else "example")
    if sampling == "full":
        return "exact: every {} in every step (q = 1), no subsampling".format("client" if unit == "user" else "example")
    if sampling == "uniform":
        return _UNIFORM_NOTE.format(units="clients" if unit == "user" else "examples",
                                    total="K" if unit == "user" else "n")
    raise FedsimError(f"sampling must be 'poisson', 'uniform' or 'full', got {sampling!r}")


class PrivacyAccountant:
    """Privacy spent by a run of subsampled Gaussian steps.

    Parameters
    ----------
    delta : float
        Target delta in (0, 1).
    accountant : str (default: "rdp")
        ``rdp`` or ``prv`` (Opacus).
    sampling : str (default: "poisson")
        ``poisson`` or ``full`` (accounted exactly) or ``uniform`` (labelled approximate).
    unit : str (default: "user")
        ``user`` (one step per round, q = client sampling rate) or ``sample`` (DP-SGD steps).
    """

    def __init__(self, *, delta: float, accountant: str = "rdp", sampling: Sampling = "poisson",
                 unit: Unit = "user") -> None:
        self.delta = check_delta(delta)
        self.accountant = check_accountant(accountant)
        self.note = sampling_note(sampling, unit)
        self.sampling = sampling
        self.unit = unit
        self.history: list[tuple[float, float, int]] = []

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
        return epsilon_from_history(self.history, delta=self.delta, accountant=self.accountant)

    def epsilon_after(self, *, noise_multiplier: float, sample_rate: float, steps: int = 1) -> float:
        """Epsilon if ``steps`` more steps were taken; used to stop before a budget is exceeded."""
        extra = [(check_noise_multiplier(noise_multiplier), check_sample_rate(sample_rate), check_steps(steps))]
        return epsilon_from_history(self.history + extra, delta=self.delta, accountant=self.accountant)

    def ledger(self) -> dict[str, Any]:
        """The privacy ledger written into summary.json."""
        eps = self.epsilon()
        zs = {z for z, _, _ in self.history}
        qs = {q for _, q, _ in self.history}
        return {
            "epsilon": eps if math.isfinite(eps) else None,
            "delta": self.delta,
            "accountant": self.accountant,
            "noise_multiplier": zs.pop() if len(zs) == 1 else sorted(zs),
            "sample_rate": qs.pop() if len(qs) == 1 else sorted(qs),
            "steps": self.steps,
            "unit": self.unit,
            "sampling": self.sampling,
            "exact": self.sampling != "uniform",
            "note": self.note,
            "history": [list(h) for h in self.history],
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume accounting (e.g. from a checkpoint)."""
        return {"delta": self.delta, "accountant": self.accountant, "sampling": self.sampling, "unit": self.unit,
                "history": [list(h) for h in self.history]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "PrivacyAccountant":
        """Rebuild an accountant from :meth:`state_dict` or a ledger."""
        acc = cls(delta=state["delta"], accountant=state["accountant"], sampling=state["sampling"], unit=state["unit"])
        for z, q, t in state["history"]:
            acc.step(noise_multiplier=z, sample_rate=q, steps=int(t))
        return acc
