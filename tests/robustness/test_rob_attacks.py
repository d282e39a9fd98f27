"""Attacks: closed forms on a linear model, ball constraints, dual-norm directions, vmap over clients."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import vmap

from fedsim.models.functional import FunctionalModel
from fedsim.robustness.attacks import carlini_wagner_l2, dual_direction, fgm, fgsm, input_gradient, per_sample_norm, pgd, project


def linear(d: int = 6, k: int = 2, seed: int = 0) -> tuple[FunctionalModel, torch.Tensor]:
    torch.manual_seed(seed)
    model = FunctionalModel(nn.Linear(d, k))
    return model, model.initial_params() * 3


def test_fgsm_on_a_linear_binary_model_is_the_closed_form() -> None:
    # Seed 003's linear example: for logits W x + b and label y, grad_x CE = p_other (w_other - w_y),
    # so FGSM moves every coordinate by eps * sign(w_other - w_y), independent of x.
    model, params = linear()
    w = params[:12].view(2, 6)
    x = torch.randn(5, 6)
    y = torch.tensor([0, 1, 0, 1, 1])
    eps = 0.3
    expected = x + eps * torch.sign(w[1 - y] - w[y])
    assert torch.allclose(fgsm(model, params, x, y, eps), expected)


def test_fgsm_increases_the_loss_to_first_order() -> None:
    model, params = linear(d=10, k=4)
    x, y = torch.randn(8, 10), torch.randint(0, 4, (8,))
    before = model.loss(params, x, y)
    assert model.loss(params, fgsm(model, params, x, y, 1e-3), y) > before


def test_l2_direction_is_the_normalized_gradient() -> None:
    model, params = linear(d=10, k=3)
    x, y = torch.randn(7, 10), torch.randint(0, 3, (7,))
    g = input_gradient(model, params, x, y)
    # Reference: per-sample autograd of each sample's own loss.
    for i in range(7):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(model.loss(params, xi, y[i : i + 1]), xi)
        assert torch.allclose(g[i], gi[0], atol=1e-6)
    step = fgm(model, params, x, y, 0.5, "l2") - x
    assert torch.allclose(step, 0.5 * g / g.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(per_sample_norm(dual_direction(g, "l2"), "l2"), torch.ones(7))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_iterates_stay_in_the_ball_and_the_data_range(norm: str) -> None:
    torch.manual_seed(1)
    module = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3))
    model = FunctionalModel(module)
    params = model.initial_params()
    x, y = torch.rand(9, 1, 4, 4), torch.randint(0, 3, (9,))
    eps = 0.2 if norm == "linf" else 0.8
    adv = pgd(model, params, x, y, eps, norm=norm, steps=15, random_init=True,
              generator=torch.Generator().manual_seed(0), bounds=(0.0, 1.0))
    assert (per_sample_norm(adv - x, norm) <= eps * (1 + 1e-5)).all()
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    # PGD is at least as strong as its first step (FGSM / FGM) on average here.
    one = fgm(model, params, x, y, eps, norm, bounds=(0.0, 1.0))
    assert model.loss(params, adv, y) >= model.loss(params, one, y) - 1e-4


def test_projection_is_idempotent_and_nonexpansive() -> None:
    d = torch.randn(20, 5) * 3
    for norm, eps in (("linf", 0.5), ("l2", 1.0)):
        p = project(d, eps, norm)
        assert torch.allclose(project(p, eps, norm), p)
        inside = per_sample_norm(d, norm) <= eps
        assert torch.equal(p[inside], d[inside])
    per = project(d, torch.linspace(0.1, 2.0, 20), "l2")
    assert torch.allclose(per_sample_norm(per, "l2"), torch.minimum(per_sample_norm(d, "l2"), torch.linspace(0.1, 2.0, 20)))


def test_pgd_vmaps_over_clients_like_a_loop() -> None:
    model, _ = linear(d=6, k=3)
    params = torch.randn(4, model.dim)
    x, y = torch.randn(4, 5, 6), torch.randint(0, 3, (4, 5))
    noise = torch.randn(4, 5, 7)
    attack = lambda p, xx, yy, z: pgd(model, p, xx, yy, 0.3, norm="l2", steps=3, random_init=True, start_noise=z)  # noqa: E731
    batched = vmap(attack)(params, x, y, noise)
    for c in range(4):
        assert torch.allclose(batched[c], attack(params[c], x[c], y[c], noise[c]), atol=1e-6)


def boundary_problem(n: int = 10) -> tuple[FunctionalModel, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A binary linear model (float64) and points in [0, 1]^6 whose closest misclassified point is
    ``|margin| / ||w_1 - w_0||_2`` away, inside the box (the exact l2 distance to the boundary)."""
    torch.manual_seed(4)
    model = FunctionalModel(nn.Linear(6, 2).double())
    params = model.initial_params().double() * 30
    w = params[:12].view(2, 6)
    x = 0.5 + 0.1 * torch.randn(n, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    logits = model.logits(params, x)
    exact = (logits[:, 0] - logits[:, 1]).abs() / (w[1] - w[0]).norm()
    return model, params, x, logits.argmax(1), exact


def test_carlini_wagner_binary_search_approaches_the_exact_boundary_distance_from_above() -> None:
    model, params, x, y, exact = boundary_problem()
    adv = carlini_wagner_l2(model, params, x, y, initial_const=1e-3, binary_search_steps=9, steps=200, lr=0.01)
    assert (model.logits(params, adv).argmax(1) != y).all()
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    ratio = (adv - x).norm(dim=1) / exact
    # No misclassified point is closer than the boundary; the search gets within a few percent of it.
    assert (ratio >= 1 - 1e-9).all() and ratio.median() < 1.02 and ratio.max() < 1.1, ratio


def test_carlini_wagner_binary_search_never_does_worse_than_its_fixed_first_constant() -> None:
    model, params, x, y, _ = boundary_problem()
    fixed = carlini_wagner_l2(model, params, x, y, initial_const=10.0, binary_search_steps=1, steps=100, lr=0.01)
    searched = carlini_wagner_l2(model, params, x, y, initial_const=10.0, binary_search_steps=5, steps=100, lr=0.01)
    d_fixed, d_searched = (fixed - x).norm(dim=1), (searched - x).norm(dim=1)
    assert (model.logits(params, fixed).argmax(1) != y).all()  # c = 10 breaks every sample, far past the boundary
    assert (d_searched <= d_fixed + 1e-12).all() and d_searched.sum() < d_fixed.sum()


def test_carlini_wagner_failures_return_the_input_unchanged() -> None:
    model, params, x, y, _ = boundary_problem()
    # A tiny constant and few steps: the distance term wins and no sample is broken.
    adv = carlini_wagner_l2(model, params, x, y, initial_const=1e-6, binary_search_steps=1, steps=20)
    assert torch.equal(adv, x)
    # With kappa the attack must clear a margin: success implies max_{j != y} Z_j - Z_y > kappa.
    adv = carlini_wagner_l2(model, params, x, y, initial_const=1.0, binary_search_steps=4, steps=100, kappa=2.0)
    broken = (adv != x).any(1)
    z = model.logits(params, adv[broken])
    assert broken.any() and (z.gather(1, 1 - y[broken, None]) - z.gather(1, y[broken, None]) > 2.0).all()


def test_carlini_wagner_vmaps_over_clients_like_a_loop() -> None:
    model, _ = linear(d=6, k=3)
    params = torch.randn(3, model.dim) * 3
    x = torch.rand(3, 4, 6)
    y = torch.stack([model.logits(params[c], x[c]).argmax(1) for c in range(3)])
    attack = lambda p, xx, yy: carlini_wagner_l2(model, p, xx, yy, initial_const=0.1, binary_search_steps=3, steps=30)  # noqa: E731
    batched = vmap(attack)(params, x, y)
    for c in range(3):
        assert torch.allclose(batched[c], attack(params[c], x[c], y[c]), atol=1e-6)


def test_minimal_distance_on_a_linear_binary_model_is_the_margin_distance() -> None:
    # For logits W x + b with two classes, the closest l2 adversarial point is at distance
    # |margin| / ||w_1 - w_0||_2 and the l_inf one at |margin| / ||w_1 - w_0||_1 (no clamping).
    from fedsim.robustness.evaluation import minimal_distance

    model, params = linear(d=6, k=2, seed=4)
    w, b = params[:12].view(2, 6), params[12:]
    x = torch.randn(40, 6)
    logits = model.logits(params, x)
    y = logits.argmax(1)
    margin = (logits[:, 0] - logits[:, 1]).abs()
    for norm, dual in (("l2", 2), ("linf", 1)):
        exact = margin / (w[1] - w[0]).norm(p=dual)
        found = minimal_distance(model, params, x, y, norm=norm, eps_max=float(exact.max()) * 2, bisection_steps=14, pgd_steps=10)
        assert torch.allclose(found, exact, rtol=0.02, atol=1e-3)


def test_robust_accuracy_drops_with_eps_and_is_clean_at_zero() -> None:
    from fedsim.robustness.evaluation import AttackSpec, robust_accuracy

    model, params = linear(d=6, k=3, seed=5)
    x = torch.rand(60, 6)
    y = model.logits(params, x).argmax(1)
    spec = AttackSpec("pgd", "linf", steps=10)
    accs = [robust_accuracy(model, params, x, y, spec, eps) for eps in (0.0, 0.05, 0.2, 1.0)]
    assert accs[0] == 1.0 and accs == sorted(accs, reverse=True) and accs[-1] < 0.2
