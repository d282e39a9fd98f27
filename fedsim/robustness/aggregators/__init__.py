"""Byzantine-robust aggregation rules on the ``(C, d)`` matrix of client updates, one module per rule
(its paper and breakdown point in the module docstring).

Every rule is one function ``rule(updates, weights, f=..., ...) -> (d,)`` working on the whole
matrix at once; ``weights`` are FedAvg's ``p_k`` (summing to one). ``f`` is the number of Byzantine
rows the rule is asked to tolerate. Where a rule's guarantee needs a condition on ``(n, f)`` it
is checked and a violation refused with :class:`~fedsim.errors.FedsimError`: a rule run outside
its breakdown point returns a number with no meaning.

:class:`Aggregator` turns a rule plus an assumed Byzantine *fraction* into the single callable
the FedAvg family's aggregate stage takes (``f = floor(fraction * C)`` per cohort).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from fedsim.errors import FedsimError
from fedsim.robustness.aggregators._bulyan import bulyan
from fedsim.robustness.aggregators._centered_clipping import centered_clipping
from fedsim.robustness.aggregators._geometric_median import geometric_median
from fedsim.robustness.aggregators._krum import krum, krum_scores, multi_krum
from fedsim.robustness.aggregators._mean import mean
from fedsim.robustness.aggregators._median import coordinate_median
from fedsim.robustness.aggregators._trimmed_mean import trimmed_mean

__all__ = [
    "AGGREGATORS",
    "Aggregator",
    "bulyan",
    "centered_clipping",
    "coordinate_median",
    "geometric_median",
    "krum",
    "krum_scores",
    "mean",
    "multi_krum",
    "trimmed_mean",
]


AGGREGATORS: dict[str, Callable[..., Tensor]] = {
    "mean": mean,
    "median": coordinate_median,
    "trimmed_mean": trimmed_mean,
    "krum": krum,
    "multi_krum": multi_krum,
    "geometric_median": geometric_median,
    "centered_clipping": centered_clipping,
    "bulyan": bulyan,
}


@dataclass(frozen=True)
class Aggregator:
    """A rule from :data:`AGGREGATORS` with its options and an assumed Byzantine fraction.

    Calling it on a cohort's ``(C, d)`` updates and weights gives the aggregate update, with
    ``f = floor(assumed_fraction * C)``.

    Parameters
    ----------
    kind : str
        A key of :data:`AGGREGATORS`.
    assumed_fraction : float (default: 0.0)
        The fraction of each cohort the rule is asked to tolerate.
    options : dict (default: {})
        Extra keyword arguments of the rule (``tau``, ``iterations``, ``m``, ``trim``, ``nu``).
    """

    kind: str = "mean"
    assumed_fraction: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in AGGREGATORS:
            raise FedsimError(f"algorithm.aggregator.kind: '{self.kind}' is unknown (allowed: {', '.join(AGGREGATORS)})")
        if not 0.0 <= self.assumed_fraction < 0.5:
            raise FedsimError(f"algorithm.aggregator.assumed_fraction: must be in [0, 0.5), got {self.assumed_fraction}")

    def num_byzantine(self, n: int) -> int:
        return int(math.floor(self.assumed_fraction * n + 1e-9))

    def __call__(self, updates: Tensor, weights: Tensor) -> Tensor:
        return AGGREGATORS[self.kind](updates, weights, f=self.num_byzantine(updates.shape[0]), **self.options)
