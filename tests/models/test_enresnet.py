"""EnResNet (Wang et al. 2019): where the noise enters, the ensemble average, and the noise as an explicit input."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, vmap

from fedsim.client import ClientContext, ClientTask, LocalSGD, train_client
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel, evaluate
from fedsim.models.zoo import EnResNet, ResNet, _Block, build_model

SHAPE = (1, 28, 28)


def enresnet(ensemble: int = 2, noise_std: float = 0.1, width: int = 4) -> FunctionalModel:
    return FunctionalModel(build_model("enresnet", seed=0, input_shape=SHAPE, depth=8, width=width, ensemble=ensemble, noise_std=noise_std))


def perturbed(model: FunctionalModel, seed: int = 1) -> torch.Tensor:
    """Initial parameters moved off their init (GroupNorm's unit scales and zero shifts), so every part matters."""
    p = model.initial_params()
    return p + 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed))


def inputs(n: int = 6, seed: int = 2) -> torch.Tensor:
    return torch.rand(n, 784, generator=torch.Generator().manual_seed(seed))


def test_one_member_without_noise_is_exactly_the_resnet():
    resnet = FunctionalModel(build_model("resnet", seed=0, input_shape=SHAPE, depth=8, width=4))
    en1 = enresnet(ensemble=1, noise_std=0.0)
    assert en1.noise_numel == 0
    # Same parameter layout and, for the same seed, the same initial weights.
    assert en1.spec.shapes == resnet.spec.shapes
    assert torch.equal(en1.initial_params(), resnet.initial_params())
    p, x = perturbed(resnet), inputs()
    assert torch.equal(en1.logits(p, x), resnet.logits(p, x))


def test_ensemble_is_the_average_of_its_members_logits():
    model = enresnet(ensemble=3, noise_std=0.2)
    module: EnResNet = model.module  # type: ignore[assignment]
    p, x = perturbed(model), inputs()
    z = torch.randn(len(x), model.noise_numel, generator=torch.Generator().manual_seed(3))
    named = model.spec.unflatten(p)
    members, start = [], 0
    for m, member in enumerate(module.members):
        prefix = f"members.{m}."
        own = {k[len(prefix):]: v for k, v in named.items() if k.startswith(prefix)}
        members.append(functional_call(member, own, (x, z[:, start : start + member.noise_numel])))
        start += member.noise_numel
    assert start == model.noise_numel
    torch.testing.assert_close(model.logits(p, x, z), sum(members) / 3, rtol=0, atol=1e-6)
    # The members differ (independent initialisations), so the average is not any one of them.
    assert not torch.allclose(members[0], members[1])


def test_block_adds_sigma_times_the_samples_std_times_the_noise():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # module init only; the forward draws nothing
        block = _Block(4, 8, 2, 2, noise_std=0.3)
    x = torch.randn(5, 4, 14, 14, generator=torch.Generator().manual_seed(4))
    clean = block(x)
    z = torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    std = clean.flatten(1).std(1).reshape(-1, 1, 1, 1)  # torch.std, unbiased, per sample
    torch.testing.assert_close(block(x, z.flatten(1)), clean + 0.3 * std * z, rtol=0, atol=1e-6)


def test_noise_is_an_input_same_noise_same_output_different_noise_different_output():
    model = enresnet()
    p, x = perturbed(model), inputs()
    g = torch.Generator().manual_seed(6)
    z1, z2 = torch.randn(len(x), model.noise_numel, generator=g), torch.randn(len(x), model.noise_numel, generator=g)
    state = torch.random.get_rng_state()
    a, b = model.logits(p, x, z1), model.logits(p, x, z1.clone())
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)  # no global randomness drawn
    assert not torch.allclose(a, model.logits(p, x, z2))
    # Zero noise is the noiseless network, and per-sample std keeps samples independent of their batch.
    assert torch.equal(model.logits(p, x, torch.zeros_like(z1)), enresnet(noise_std=0.0).logits(p, x))
    torch.testing.assert_close(model.logits(p, x[:2], z1[:2]), a[:2], rtol=0, atol=1e-6)
    with pytest.raises(FedsimError, match="needs its forward noise"):
        model.logits(p, x)


def test_noise_batches_over_clients_with_vmap():
    model = enresnet()
    ps = torch.stack([perturbed(model, s) for s in (1, 2, 3)])
    xs = torch.stack([inputs(4, s) for s in (4, 5, 6)])
    zs = torch.randn(3, 4, model.noise_numel, generator=torch.Generator().manual_seed(7))
    batched = vmap(model.logits)(ps, xs, zs)
    one_by_one = torch.stack([model.logits(ps[c], xs[c], zs[c]) for c in range(3)])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-5, atol=1e-5)


def test_training_draws_noise_from_the_clients_stream_only():
    model = enresnet()
    x, y = inputs(40), torch.randint(0, 10, (40,), generator=torch.Generator().manual_seed(8))
    task = ClientTask(LocalSGD(lr=0.05, batch_size=16, epochs=1))
    p = model.initial_params()
    first = train_client(task, model, p, x, y, ClientContext(0, 0, 0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)  # global state must not matter
        again = train_client(task, model, p, x, y, ClientContext(0, 0, 0))
    assert torch.equal(first.update, again.update)
    other_client = train_client(task, model, p, x, y, ClientContext(0, 0, 1))
    assert not torch.equal(first.update, other_client.update)
    # The minibatches are the same ("batches" stream of the same client): only the noise differs.
    noiseless = enresnet(noise_std=0.0)
    quiet = train_client(task, noiseless, p, x, y, ClientContext(0, 0, 0))
    assert not torch.allclose(first.update, quiet.update)


def test_evaluation_noise_is_seeded_and_batch_capped():
    model = enresnet(ensemble=5, width=16)
    p, x = perturbed(model), inputs(30)
    y = torch.randint(0, 10, (30,), generator=torch.Generator().manual_seed(9))
    assert model.eval_batch_size(2500) < 2500  # a batch's noise stays bounded
    assert evaluate(model, p, x, y, noise_seed=1) == evaluate(model, p, x, y, noise_seed=1)
    with pytest.raises(FedsimError, match="no generator"):
        evaluate(model, p, x, y)


@pytest.mark.parametrize(
    "key,value,message",
    [("ensemble", 0, "model.ensemble"), ("noise_std", -0.1, "model.noise_std"), ("width", 0, "model.width"), ("depth", 14, "model.depth")],
)
def test_bad_values_are_one_line_errors(key, value, message):
    kwargs = {"ensemble": 1, "noise_std": 0.1, "width": 4, "depth": 8, key: value}
    with pytest.raises(FedsimError, match=message):
        build_model("enresnet", seed=0, input_shape=SHAPE, **kwargs)


def test_width_scales_every_stage():
    narrow = ResNet(8, 10, SHAPE, 2, width=4)
    assert [b.conv2.out_channels for b in narrow.layers] == [4, 8, 16]
    assert narrow.noise_numel == 0 and ResNet(8, 10, SHAPE, 2, width=4, noise_std=0.1).noise_numel == 4 * 784 + 8 * 196 + 16 * 49
