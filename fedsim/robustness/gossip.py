"""Robust gossip rules: replacements for the plain mixing step ``X <- W X`` on the (n, d) node matrix.

Both take the dense mixing matrix ``W`` (row i: node i's weights on its neighbours, ``W_ij > 0``
iff j is a neighbour or i itself) and return the new node matrix. Byzantine rows of ``X`` are
whatever the attackers sent; the rules bound how far they can pull an honest node per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.errors import FedsimError

__all__ = ["GOSSIP_RULES", "RobustGossip", "clipped_gossip", "trimmed_mean_gossip"]


def _dense(w: Tensor) -> Tensor:
    return w.to_dense() if w.layout != torch.strided else w


def clipped_gossip(x: Tensor, w: Tensor, tau: float | Tensor) -> Tensor:
    """Self-centered clipping (ClippedGossip; He, Karimireddy and Jaggi 2022, arXiv:2202.01545, eq. (3)):
    ``x_i <- x_i + sum_j W_ij clip_tau(x_j - x_i)``, ``clip_tau(u) = u min(1, tau / ||u||)``.

    ``tau`` is a float or an (n,) tensor of per-node radii. With ``tau`` above every neighbour
    distance it is plain gossip ``W X`` (for row-stochastic W).
    """
    w = _dense(w).to(x.dtype)
    taus = tau.to(x) if isinstance(tau, Tensor) else torch.full((x.shape[0],), float(tau), dtype=x.dtype, device=x.device)
    out = x.clone()
    # Per node over its neighbours only: O(edges * d) memory, not the (n, n, d) difference tensor.
    for i in range(x.shape[0]):
        nbrs = torch.nonzero(w[i]).flatten()
        diff = x[nbrs] - x[i]
        norms = diff.norm(dim=1)
        scale = torch.where(norms > taus[i], taus[i] / norms.clamp_min(1e-30), torch.ones_like(norms))
        out[i] = x[i] + (w[i, nbrs] * scale) @ diff
    return out


def trimmed_mean_gossip(x: Tensor, w: Tensor, trim: int) -> Tensor:
    """Coordinate-wise trimmed mean over each node's closed neighbourhood (Yin et al. 2018's rule
    applied per node, as in Byzantine-resilient decentralized SGD, e.g. Yang and Bajwa 2019):
    drop the ``trim`` largest and smallest values of each coordinate among ``{x_j : W_ij > 0}``
    and average the rest (unweighted). Refused unless every neighbourhood has more than 2 trim nodes.
    """
    w = _dense(w)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        nbrs = torch.nonzero(w[i] > 0).flatten()
        if len(nbrs) <= 2 * trim:
            raise FedsimError(f"robustness.gossip.trim: node {i} has {len(nbrs)} nodes in its neighbourhood, needs > 2*trim={2 * trim}")
        vals = x[nbrs].sort(0).values
        out[i] = vals[trim : len(nbrs) - trim].mean(0)
    return out


GOSSIP_RULES = ("clipped", "trimmed_mean")


@dataclass(frozen=True)
class RobustGossip:
    """A robust mixing step ``f(X, W) -> X`` for the decentralized rules (``clipped`` or ``trimmed_mean``)."""

    kind: str = "clipped"
    tau: float = 1.0
    trim: int = 1

    def __post_init__(self) -> None:
        if self.kind not in GOSSIP_RULES:
            raise FedsimError(f"algorithm.robust_gossip.kind: '{self.kind}' is unknown (allowed: {', '.join(GOSSIP_RULES)})")

    def __call__(self, x: Tensor, w: Tensor) -> Tensor:
        if self.kind == "clipped":
            return clipped_gossip(x, w, self.tau)
        return trimmed_mean_gossip(x, w, self.trim)
