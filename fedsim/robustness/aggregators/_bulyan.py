"""Bulyan (El Mhamdi, Guerraoui and Rouault, ICML 2018, arXiv:1802.07927): Krum selection, then a
trimmed mean around the coordinate-wise median. Needs n >= 4f + 3."""

from __future__ import annotations

from torch import Tensor

from fedsim.errors import FedsimError
from fedsim.robustness.aggregators._krum import krum_scores
from fedsim.robustness.aggregators._median import coordinate_median

__all__ = ["bulyan"]


def bulyan(updates: Tensor, weights: Tensor | None = None, f: int = 0) -> Tensor:
    """Bulyan (El Mhamdi, Guerraoui and Rouault, ICML 2018, arXiv:1802.07927).

    Select ``theta = n - 2f`` rows by repeatedly taking the Krum winner of the remaining rows,
    then per coordinate average the ``beta = theta - 2f`` values closest to the coordinate's
    median. Needs ``n >= 4f + 3``.
    """
    n = updates.shape[0]
    if n < 4 * f + 3:
        raise FedsimError(f"aggregator bulyan: needs n >= 4f + 3 updates, got n={n}, f={f}")
    remaining = list(range(n))
    selected = []
    for _ in range(n - 2 * f):
        sub = updates[remaining]
        # Krum on the remaining set; its own n - f - 2 neighbour count shrinks with it.
        k_f = min(f, max(len(remaining) - 3, 0))
        best = int(krum_scores(sub, k_f).argmin()) if len(remaining) > 2 else 0
        selected.append(remaining.pop(best))
    s = updates[selected]
    beta = len(selected) - 2 * f
    med = coordinate_median(s, None, 0)
    closest = (s - med).abs().argsort(0)[:beta]
    return s.gather(0, closest).mean(0)
