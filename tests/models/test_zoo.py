"""The model zoo: sizes from the data set, one-line errors for incompatible pairs, the hand-written LSTM
against torch.nn.LSTM, and every model batched over clients (vmap) equal to one client at a time."""

from __future__ import annotations

import pytest
import torch
from torch.func import vmap

from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import CharLSTM, build_model
from fedsim.errors import FedsimError


def test_cnn_fedavg_has_the_papers_parameter_count():
    # McMahan et al. 2017, sec. 3: "a total of 1,663,370 parameters" on MNIST.
    assert FunctionalModel(build_model("cnn_fedavg", seed=0)).dim == 1_663_370


def test_resnet20_has_he_et_als_depth_and_about_their_size():
    model = build_model("resnet", seed=0, input_shape=(3, 32, 32), depth=20)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 20  # 19 3x3 convolutions and the classifier
    n = FunctionalModel(model).dim
    assert 0.26e6 < n < 0.28e6  # He et al. 2016, Table 6: 0.27M
    assert not any(True for _ in model.buffers())  # GroupNorm: stateless


def test_char_lstm_equals_torch_lstm_with_the_same_weights():
    torch.manual_seed(0)
    model = CharLSTM(vocab_size=80, num_classes=80, embed_dim=8, hidden=16, layers=2)
    ref = torch.nn.LSTM(8, 16, 2, batch_first=True)
    with torch.no_grad():
        for i, (ih, hh) in enumerate(zip(model.ih, model.hh)):
            getattr(ref, f"weight_ih_l{i}").copy_(ih.weight)
            getattr(ref, f"weight_hh_l{i}").copy_(hh.weight)
            getattr(ref, f"bias_ih_l{i}").copy_(ih.bias)
            getattr(ref, f"bias_hh_l{i}").zero_()
    x = torch.randint(0, 80, (5, 12))
    out, _ = ref(model.embed(x))
    assert torch.allclose(model(x), model.fc(out[:, -1]), atol=1e-5)


CASES = [
    ("logistic", (1, 28, 28), "image", torch.float32, 10),
    ("mlp", (60,), "vector", torch.float32, 10),
    ("cnn", (3, 32, 32), "image", torch.float32, 10),
    ("cnn_fedavg", (1, 28, 28), "image", torch.float32, 62),
    ("resnet", (3, 32, 32), "image", torch.float32, 100),
    ("char_lstm", (20,), "sequence", torch.int64, 80),
]


@pytest.mark.parametrize("kind,shape,input_kind,dtype,classes", CASES)
def test_every_model_batches_over_clients_like_one_client_at_a_time(kind, shape, input_kind, dtype, classes):
    torch.manual_seed(0)
    model = FunctionalModel(build_model(kind, seed=0, input_shape=shape, num_classes=classes, input_kind=input_kind,
                                        vocab_size=80 if dtype == torch.int64 else None, depth=8, lstm_hidden=32))
    w0 = model.initial_params()
    clients, batch, features = 3, 4, torch.Size(shape).numel()
    params = w0 + 0.01 * torch.randn(clients, model.dim)
    x = torch.randint(0, 80, (clients, batch, features)) if dtype == torch.int64 else torch.randn(clients, batch, features)
    y = torch.randint(0, classes, (clients, batch))
    mask = torch.ones(clients, batch)
    p = params.clone().requires_grad_(True)
    losses = vmap(model.loss)(p, x, y, mask)
    (grad,) = torch.autograd.grad(losses.sum(), p)
    for c in range(clients):
        loss, g = model.loss_and_grad(params[c], x[c], y[c])
        assert torch.allclose(losses[c], loss, atol=1e-5)
        assert torch.allclose(grad[c], g, atol=1e-5, rtol=1e-4)
    assert model.logits(w0, x[0]).shape == (batch, classes)


@pytest.mark.parametrize(
    "kind,shape,input_kind,message",
    [
        ("char_lstm", (3, 32, 32), "image", "char_lstm reads sequence inputs, not data.dataset=cifar10 \\(image 3x32x32\\)"),
        ("resnet", (60,), "vector", "resnet reads image inputs"),
        ("mlp", (80,), "sequence", "mlp reads image or vector inputs"),
    ],
)
def test_incompatible_pairs_are_one_line_errors(kind, shape, input_kind, message):
    with pytest.raises(FedsimError, match=message) as err:
        build_model(kind, seed=0, input_shape=shape, input_kind=input_kind, dataset="cifar10")
    assert "\n" not in str(err.value)
