"""Byzantine attacks on the update matrix and the seeded attacker set."""

from __future__ import annotations

import torch

from fedsim.robustness.aggregators import coordinate_median, mean
from fedsim.robustness.byzantine import alie, apply_attack, byzantine_clients, flip_labels


def test_attacker_set_is_seeded_and_sized() -> None:
    a = byzantine_clients(100, 0.2, seed=3)
    assert a == byzantine_clients(100, 0.2, seed=3) and len(a) == 20 and a == sorted(set(a))
    assert a != byzantine_clients(100, 0.2, seed=4)
    assert byzantine_clients(100, 0.0, seed=3) == []


def test_apply_attack_touches_only_malicious_rows() -> None:
    u = torch.randn(6, 4)
    mask = torch.tensor([True, False, False, True, False, False])
    gen = torch.Generator().manual_seed(0)
    flipped = apply_attack(u, mask, "sign_flip", gen)
    assert torch.equal(flipped[~mask], u[~mask]) and torch.equal(flipped[mask], -u[mask])
    assert torch.equal(apply_attack(u, mask, "scaling", gen, scale=5.0)[mask], 5 * u[mask])
    ipm = apply_attack(u, mask, "ipm", gen, epsilon=0.5)
    assert torch.allclose(ipm[mask], (-0.5 * u[~mask].mean(0)).expand(2, 4))
    assert torch.equal(apply_attack(u, mask, "label_flip", gen), u)


def test_sign_flip_reverses_the_mean_at_half_but_not_the_median() -> None:
    g = torch.Generator().manual_seed(1)
    u = 1.0 + 0.1 * torch.randn(10, 8, generator=g)
    mask = torch.arange(10) < 4
    attacked = apply_attack(u, mask, "sign_flip", g, scale=4.0)
    assert (mean(attacked) < 0).all()
    assert (coordinate_median(attacked, None, f=4) > 0.5).all()


def test_alie_sits_within_the_honest_spread() -> None:
    g = torch.Generator().manual_seed(2)
    honest = torch.randn(16, 5, generator=g)
    out = alie(torch.zeros(4, 5), honest, g)
    # n = 20, f = 4: s = 7, z = Phi^{-1}(13/20) ~ 0.385: a small, in-distribution shift.
    expected = honest.mean(0) - 0.3853 * honest.std(0)
    assert torch.allclose(out[0], expected, atol=1e-3)


def test_label_flip_is_an_involution() -> None:
    y = torch.arange(10)
    assert torch.equal(flip_labels(flip_labels(y, 10), 10), y) and torch.equal(flip_labels(y, 10), 9 - y)
