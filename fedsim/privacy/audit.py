"""Empirical privacy audits: loss-threshold membership inference and a one-run canary lower bound.

* Membership inference (Yeom et al. 2018; the DP-Fed-LS reference code's ``--mi``): a sample is
  called a member when its loss is below a threshold; AUC and the best balanced accuracy over
  all thresholds are reported.
* One-run auditing (Steinke, Nasr, Jagielski 2023, arXiv:2305.08846, Theorem 3.1 and
  Algorithm 1): m canaries are each included with probability 1/2; the auditor guesses
  "included" for its k+ highest scores, "excluded" for its k- lowest and abstains otherwise.
  Under (eps, delta)-DP the number of correct guesses v out of r is dominated by
  Binomial(r, e^eps / (1 + e^eps)) up to a delta term, so every eps whose p-value falls below
  1 - confidence is refuted: the largest refuted eps is a lower bound holding with that
  confidence. The guess counts are fixed before the scores are seen, so no threshold search
  inflates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fedsim.errors import FedsimError
from fedsim.privacy.analysis import check_delta, check_sample_rate, check_steps
from fedsim.privacy.clipping import check_clip_norm
from fedsim.privacy.mechanism import add_gaussian_noise, check_noise_multiplier

__all__ = [
    "MembershipInference",
    "loss_threshold_attack",
    "one_run_p_value",
    "one_run_epsilon_lower_bound",
    "CanaryAudit",
    "default_guesses",
    "user_level_canary_audit",
]


@dataclass(frozen=True)
class MembershipInference:
    """Loss-threshold attack result: AUC and best balanced accuracy (0.5 = chance)."""

    auc: float
    accuracy: float
    threshold: float


def loss_threshold_attack(member_losses: torch.Tensor, nonmember_losses: torch.Tensor) -> MembershipInference:
    """Membership inference by thresholding per-sample loss (lower loss => member).

    AUC is the Mann-Whitney probability that a random member has lower loss than a random
    non-member (ties count 1/2); accuracy is ``max_t (TPR(t) + TNR(t)) / 2``, the accuracy on a
    balanced member/non-member set.
    """
    mem = member_losses.double().flatten()
    non = nonmember_losses.double().flatten()
    if mem.numel() == 0 or non.numel() == 0:
        raise FedsimError("membership inference needs at least one member and one non-member loss")
    scores = torch.cat([-mem, -non])
    labels = torch.cat([torch.ones_like(mem), torch.zeros_like(non)])
    # Average ranks handle ties exactly (Mann-Whitney U).
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    uniq, inverse = torch.unique(sorted_scores, return_inverse=True)
    sums = torch.zeros_like(uniq).index_add_(0, inverse, ranks[order])
    counts = torch.zeros_like(uniq).index_add_(0, inverse, torch.ones_like(sorted_scores))
    ranks[order] = (sums / counts)[inverse]
    n1, n0 = mem.numel(), non.numel()
    auc = float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    # Sweep thresholds over the sorted losses: predict member when loss <= t.
    losses = -sorted_scores.flip(0)
    lab = labels[order].flip(0)
    tpr = torch.cumsum(lab, 0) / n1
    fpr = torch.cumsum(1 - lab, 0) / n0
    last_of_tie = torch.ones_like(losses, dtype=torch.bool)
    last_of_tie[:-1] = losses[1:] != losses[:-1]
    bal = torch.where(last_of_tie, (tpr + 1 - fpr) / 2, torch.zeros_like(tpr))
    best = int(torch.argmax(bal))
    accuracy = max(float(bal[best]), 0.5)
    return MembershipInference(auc=auc, accuracy=accuracy, threshold=float(losses[best]))


def one_run_p_value(*, m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P-value of ``>= v`` correct guesses out of ``r`` under (epsilon, delta)-DP with m canaries.

    ``P[Bin(r, p) >= v] + 2 m delta max_{1<=i<=v} P[v > Bin(r, p) >= v - i] / i`` with
    ``p = e^eps / (1 + e^eps)`` (Steinke, Nasr, Jagielski 2023, Theorem 3.1).
    """
    from scipy.stats import binom

    if not 0 <= v <= r <= m:
        raise FedsimError(f"one-run audit needs 0 <= correct <= guesses <= canaries, got {v}, {r}, {m}")
    p = 1 / (1 + math.exp(-epsilon))
    tail = float(binom.sf(v - 1, r, p))
    pmf = binom.pmf(range(v - 1, -1, -1), r, p) if v > 0 else []
    worst, running = 0.0, 0.0
    for i, mass in enumerate(pmf, start=1):
        running += float(mass)
        worst = max(worst, running / i)
    return min(1.0, tail + 2 * m * delta * worst)


def one_run_epsilon_lower_bound(*, m: int, r: int, v: int, delta: float, confidence: float = 0.95) -> float:
    """Largest epsilon refuted at the given confidence (0 if none is): ``p_value(eps) < 1 - confidence``."""
    if not 0 < confidence < 1:
        raise FedsimError(f"audit confidence must lie in (0, 1), got {confidence}")
    alpha = 1 - confidence
    if one_run_p_value(m=m, r=r, v=v, epsilon=0.0, delta=delta) >= alpha:
        return 0.0
    lo, hi = 0.0, 1.0
    while one_run_p_value(m=m, r=r, v=v, epsilon=hi, delta=delta) < alpha:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        if one_run_p_value(m=m, r=r, v=v, epsilon=mid, delta=delta) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class CanaryAudit:
    """Outcome of a canary experiment: the lower bound, its confidence and the guess counts."""

    epsilon_lower_bound: float
    confidence: float
    canaries: int
    guesses: int
    correct: int


def default_guesses(canaries: int, sample_rate: float, rounds: int) -> int:
    """Half the expected number of canaries that are present and sampled at least once.

    Fixed from (m, q, T) before any score is seen, as Theorem 3.1 requires. Only "included" is
    guessed: a present canary that was never sampled scores like an absent one, so at small
    q T the low end of the ranking mixes both and "excluded" guesses carry no evidence (with
    q = 0.01 and T = 30, 74% of present canaries are never sampled).
    """
    reached = 1.0 - (1.0 - sample_rate) ** rounds
    return max(1, int(canaries * 0.5 * reached / 2))


def user_level_canary_audit(*, noise_multiplier: float, sample_rate: float, rounds: int, clip_norm: float,
                            dim: int, delta: float, generator: torch.Generator, canaries: int = 1000,
                            guesses_per_side: int | None = None, confidence: float = 0.95) -> CanaryAudit:
    """One-run audit of user-level DP-Fed-LS with canary clients (white-box on the released sums).

    Each of ``canaries`` clients holds a random direction ``c_i`` of norm G and is in the
    population with probability 1/2. Every round, each present canary is Poisson-sampled with
    rate q and contributes its clipped update ``c_i``; the server releases
    ``sum + N(0, (z G)^2 I)`` through :func:`add_gaussian_noise`, the same mechanism the
    algorithms call. The honest clients' updates are omitted: an adversary who knows them can
    subtract them, so this is the strongest setting. Score_i = sum_t <release_t, c_i>.

    ``guesses_per_side`` k: guess "included" for the k highest and "excluded" for the k lowest
    scores. Default (None): guess "included" only, for the :func:`default_guesses` highest.
    """
    z = check_noise_multiplier(noise_multiplier)
    q = check_sample_rate(sample_rate)
    g = check_clip_norm(clip_norm)
    delta = check_delta(delta)
    if guesses_per_side is not None:
        k_in = k_out = guesses_per_side
        if not 1 <= 2 * guesses_per_side <= canaries:
            raise FedsimError(f"guesses per side must lie in [1, canaries/2], got {guesses_per_side} for {canaries} canaries")
    else:
        k_in, k_out = default_guesses(canaries, q, check_steps(rounds)), 0
    directions = torch.randn(canaries, dim, generator=generator, dtype=torch.float64)
    directions = directions / torch.linalg.vector_norm(directions, dim=1, keepdim=True) * g
    present = torch.rand(canaries, generator=generator, dtype=torch.float64) < 0.5
    scores = torch.zeros(canaries, dtype=torch.float64)
    for _ in range(check_steps(rounds)):
        sampled = present & (torch.rand(canaries, generator=generator, dtype=torch.float64) < q)
        release = add_gaussian_noise(directions[sampled].sum(0), noise_multiplier=z, sensitivity=g,
                                     generator=generator)
        scores += directions @ release
    order = torch.argsort(scores, descending=True)
    correct = int(present[order[:k_in]].sum()) + (int((~present[order[-k_out:]]).sum()) if k_out else 0)
    bound = one_run_epsilon_lower_bound(m=canaries, r=k_in + k_out, v=correct, delta=delta, confidence=confidence)
    return CanaryAudit(epsilon_lower_bound=bound, confidence=confidence, canaries=canaries, guesses=k_in + k_out,
                       correct=correct)
