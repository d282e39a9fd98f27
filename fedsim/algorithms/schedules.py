"""Learning-rate schedules over communication rounds, for the client and the server step size.

A schedule is a multiplicative factor ``s(t)`` on a base rate, ``eta_t = eta * s(t)`` for round
``t = 0, ..., T-1``. The three rules: constant, step (exponential) decay ``eta <- eta / alpha``
every E rounds, and the cosine schedule (Loshchilov and Hutter, "SGDR", ICLR 2017, without
restarts) ``eta_t = eta_min + 1/2 (eta_max - eta_min) (1 + cos(t pi / T))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LRSchedule"]


@dataclass(frozen=True)
class LRSchedule:
    """A round-indexed learning-rate factor.

    Parameters
    ----------
    kind : {"constant", "step", "cosine"} (default: "constant")
        The rule.
    gamma : float (default: 0.5)
        ``step``: the factor applied every ``step_size`` rounds (``1 / alpha`` above).
    step_size : int (default: 10)
        ``step``: rounds between decays.
    min_factor : float (default: 0.0)
        ``cosine``: ``eta_min / eta_max``.
    total_rounds : int (default: 1)
        ``cosine``: T, the number of rounds the cosine spans.
    """

    kind: str = "constant"
    gamma: float = 0.5
    step_size: int = 10
    min_factor: float = 0.0
    total_rounds: int = 1

    def factor(self, rnd: int) -> float:
        """``s(t)`` for the 0-based round ``rnd``."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "step":
            return self.gamma ** (rnd // self.step_size)
        if self.kind == "cosine":
            return self.min_factor + 0.5 * (1.0 - self.min_factor) * (1.0 + math.cos(rnd * math.pi / self.total_rounds))
        raise ValueError(f"unknown schedule kind {self.kind!r} (allowed: constant, step, cosine)")
