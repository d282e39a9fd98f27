"""Membership-inference metrics against brute force; the one-run canary bound stays below accounted epsilon."""

import itertools

import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.privacy import compute_epsilon
from fedsim.privacy.analysis import gaussian_exact_epsilon
from fedsim.privacy.audit import (
    loss_threshold_attack,
    one_run_epsilon_lower_bound,
    one_run_p_value,
    user_level_canary_audit,
)


def test_auc_and_accuracy_match_brute_force_with_ties():
    gen = torch.Generator().manual_seed(0)
    mem = torch.randint(0, 6, (40,), generator=gen).double()
    non = torch.randint(1, 8, (30,), generator=gen).double()
    res = loss_threshold_attack(mem, non)
    pairs = [(1.0 if a < b else 0.5 if a == b else 0.0) for a, b in itertools.product(mem.tolist(), non.tolist())]
    assert res.auc == pytest.approx(sum(pairs) / len(pairs))
    best = max(((mem <= t).double().mean() + (non > t).double().mean()) / 2 for t in torch.cat([mem, non]).tolist())
    assert res.accuracy == pytest.approx(float(best))


def test_same_distribution_is_chance():
    gen = torch.Generator().manual_seed(1)
    res = loss_threshold_attack(torch.rand(20000, generator=gen), torch.rand(20000, generator=gen))
    assert res.auc == pytest.approx(0.5, abs=0.01) and res.accuracy < 0.52
    with pytest.raises(FedsimError):
        loss_threshold_attack(torch.tensor([]), torch.rand(3))


def test_p_value_decreases_with_evidence_and_grows_with_epsilon():
    assert one_run_p_value(m=100, r=50, v=45, epsilon=1.0, delta=0) < one_run_p_value(m=100, r=50, v=35, epsilon=1.0, delta=0)
    assert one_run_p_value(m=100, r=50, v=45, epsilon=0.5, delta=0) < one_run_p_value(m=100, r=50, v=45, epsilon=1.5, delta=0)
    assert one_run_epsilon_lower_bound(m=100, r=50, v=25, delta=1e-5) == 0.0
    perfect = one_run_epsilon_lower_bound(m=1000, r=1000, v=1000, delta=0.0)
    # r perfect guesses refute eps exactly when (e^eps / (1 + e^eps))^r < 0.05.
    assert (1 / (1 + torch.exp(torch.tensor(-perfect, dtype=torch.float64)))) ** 1000 == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize("z,q,rounds", [(0.5, 1.0, 1), (2.0, 1.0, 1), (1.0, 0.5, 4)])
def test_canary_lower_bound_sits_below_accounted_epsilon(z, q, rounds):
    audit = user_level_canary_audit(noise_multiplier=z, sample_rate=q, rounds=rounds, clip_norm=0.3, dim=2000,
                                    delta=1e-5, generator=torch.Generator().manual_seed(7), canaries=600)
    accounted = compute_epsilon(noise_multiplier=z, sample_rate=q, steps=rounds, delta=1e-5)
    assert 0 < audit.epsilon_lower_bound < accounted
    if q == 1.0:
        assert audit.epsilon_lower_bound < gaussian_exact_epsilon(noise_multiplier=z, steps=rounds, delta=1e-5)


def test_canary_audit_detects_a_non_private_run_at_small_sampling_rates():
    """z = 0 at the shipped DP-Fed-LS setting (q = 0.01, 30 rounds): the bound is clearly above 0,
    while with calibrated noise it stays below the accounted (replace-one, fixed cohort) epsilon."""
    delta, gen = 2000 ** -1.1, torch.Generator().manual_seed(3)
    leak = user_level_canary_audit(noise_multiplier=0.0, sample_rate=0.01, rounds=30, clip_norm=0.3, dim=2000,
                                   delta=delta, generator=gen, canaries=1000)
    assert leak.correct == leak.guesses and leak.epsilon_lower_bound > 1.5
    z = 1.4433  # eps = 2 for 20 of 2000 clients, 30 rounds (dp-accounting, replace-one)
    private = user_level_canary_audit(noise_multiplier=z, sample_rate=0.01, rounds=30, clip_norm=0.3, dim=2000,
                                      delta=delta, generator=gen, canaries=1000)
    accounted = compute_epsilon(noise_multiplier=z, sample_rate=0.01, steps=30, delta=delta, sampling="uniform",
                                population=2000)
    assert private.epsilon_lower_bound < accounted <= 2.0
