"""Robust training objectives: eps = 0 is plain training, the penalty is a finite-difference match,
and each objective vmaps over clients like a loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import vmap

from fedsim.models.functional import FunctionalModel
from fedsim.robustness.gossip import clipped_gossip, trimmed_mean_gossip
from fedsim.robustness.training import AdversarialObjective, GradientNormObjective, TulipObjective


def mlp(seed: int = 0) -> tuple[FunctionalModel, torch.Tensor]:
    torch.manual_seed(seed)
    model = FunctionalModel(nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 3)))
    return model, model.initial_params().double()


def batch(seed: int = 0, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 3, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


OBJECTIVES = [
    AdversarialObjective(attack="fgsm", eps=0.0),
    AdversarialObjective(attack="pgd", eps=0.0, norm="l2", steps=3),
    AdversarialObjective(attack="fgsm", eps=0.2, mix=0.0),
    GradientNormObjective(eps=0.0, q=1),
    GradientNormObjective(eps=0.0, q=2),
    TulipObjective(eps=0.0, lam=0.0),
]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=repr)
def test_with_eps_zero_every_objective_is_plain_training(objective) -> None:
    model, params = mlp()
    model.module.double()
    x, y = batch()
    p = params.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(objective(model, p, x, y), p)
    loss, g_plain = model.loss_and_grad(params, x, y)
    assert torch.allclose(objective(model, params, x, y), loss, atol=1e-12)
    assert torch.allclose(g, g_plain, atol=1e-12)


@pytest.mark.parametrize("q", [1, 2])
def test_gradient_norm_penalty_gradient_matches_finite_differences(q: int) -> None:
    model, params = mlp(1)
    model.module.double()
    x, y = batch(1)
    obj = TulipObjective(eps=0.3, lam=0.2, q=q) if q == 2 else GradientNormObjective(eps=0.3, q=1)
    p = params.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(obj(model, p, x, y), p)  # double backprop
    direction = torch.randn(params.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    h = 1e-6
    fd = (obj(model, params + h * direction, x, y) - obj(model, params - h * direction, x, y)) / (2 * h)
    assert torch.allclose(g @ direction, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("q", [1, 2])
def test_penalty_matches_a_finite_difference_input_gradient(q: int) -> None:
    # ||grad_x l(x_i)||_q with the input gradient estimated by central differences, coordinate by coordinate.
    model, params = mlp(5)
    model.module.double()
    x, y = batch(5, n=4)
    _, norms = GradientNormObjective(eps=1.0, q=q).penalty_terms(model, params, x, y)
    h = 1e-6
    for i in range(len(y)):
        fd = torch.zeros(x[i].numel(), dtype=torch.float64)
        for j in range(x[i].numel()):
            e = torch.zeros(x[i].numel(), dtype=torch.float64)
            e[j] = h
            up, down = x[i : i + 1] + e.view_as(x[i]), x[i : i + 1] - e.view_as(x[i])
            fd[j] = (model.loss(params, up, y[i : i + 1]) - model.loss(params, down, y[i : i + 1])) / (2 * h)
        assert torch.allclose(norms[i], fd.norm(p=q), rtol=1e-6, atol=1e-9)


def test_penalty_value_is_the_input_gradient_norm() -> None:
    model, params = mlp(2)
    model.module.double()
    x, y = batch(2)
    eps = 0.5
    expected = []
    for i in range(len(y)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(model.loss(params, xi, y[i : i + 1]), xi)
        expected.append(model.loss(params, x[i : i + 1], y[i : i + 1]) + eps * gi.norm())
    assert torch.allclose(GradientNormObjective(eps=eps, q=2)(model, params, x, y), torch.stack(expected).mean())


def test_objectives_vmap_over_clients_with_padding_masks() -> None:
    model, _ = mlp(3)
    params = torch.randn(3, model.dim)
    x = torch.rand(3, 5, 1, 3, 4)
    y = torch.randint(0, 3, (3, 5))
    weight = torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2, [1.0] * 4 + [0.0]])
    noise = torch.randn(3, 5, 13)
    for obj in (TulipObjective(eps=0.1, lam=0.1), AdversarialObjective(attack="pgd", eps=0.3, norm="l2", steps=2, random_start=True, mix=0.5)):
        batched = vmap(lambda p, xx, yy, w, z: obj(model, p, xx, yy, w, z))(params, x, y, weight, noise)
        for c in range(3):
            n = int(weight[c].sum())
            alone = obj(model, params[c], x[c, :n], y[c, :n], None, noise[c, :n])
            assert torch.allclose(batched[c], alone, atol=1e-5)


def test_adversarial_objective_raises_the_loss() -> None:
    model, params = mlp(4)
    model.module.double()
    x, y = batch(4, n=20)
    plain = model.loss(params, x, y)
    assert AdversarialObjective(attack="pgd", eps=0.3, steps=5, bounds=(0.0, 1.0))(model, params, x, y) > plain


def test_clipped_gossip_with_a_large_radius_is_plain_gossip() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    w = torch.tensor([[0.5, 0.25, 0, 0, 0.25], [0.25, 0.5, 0.25, 0, 0], [0, 0.25, 0.5, 0.25, 0],
                      [0, 0, 0.25, 0.5, 0.25], [0.25, 0, 0, 0.25, 0.5]], dtype=torch.float64)
    assert torch.allclose(clipped_gossip(x, w, 1e9), w @ x)
    x[2] = 1e6  # a Byzantine node: each neighbour moves by at most W_ij * tau
    out = clipped_gossip(x, w, 1.0)
    honest = [0, 1, 3, 4]
    assert ((out[honest] - x[honest]).norm(dim=1) <= 1.0 + 1e-9).all()


def test_trimmed_mean_gossip_ignores_one_outlier_per_neighbourhood() -> None:
    w = torch.ones(5, 5) / 5
    x = torch.randn(5, 4, dtype=torch.float64)
    honest = x[1:].clone()
    x[0] = 1e6
    out = trimmed_mean_gossip(x, w, 1)
    assert (out <= honest.max(0).values).all() and (out >= honest.min(0).values).all()
