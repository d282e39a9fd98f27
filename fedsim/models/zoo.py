"""The built-in models, sized from the data set: input shape, class count and kind of input.

Every model reads the flat ``(N, prod(input_shape))`` rows the federated data set stores and
reshapes them itself, so any model runs on any compatible data set. All are stateless (no
buffers: GroupNorm, never BatchNorm) and use only operations ``torch.func.vmap`` batches, so the
vectorized runtime trains a cohort of any of them at once; the LSTM is written out cell by
cell for that reason (``torch.nn.LSTM`` has no vmap batching rule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fedsim.errors import FedsimError
from fedsim.seeding import derive_seed

__all__ = ["CNN", "CNNFedAvg", "CharLSTM", "EnResNet", "LogisticRegression", "MLP", "MODELS", "ResNet", "build_model"]


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: ``softmax(W x + b)``."""

    def __init__(self, in_features: int = 784, num_classes: int = 10) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    """Fully connected ReLU network with the given hidden widths."""

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (200,), num_classes: int = 10) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class CNN(nn.Module):
    """LeNet-5-style CNN (LeCun et al. 1998): two conv/pool blocks, three dense layers."""

    def __init__(self, num_classes: int = 10, channels: Sequence[int] = (6, 16), input_shape: Sequence[int] = (1, 28, 28)) -> None:
        super().__init__()
        c_in, h, w = input_shape
        c1, c2 = channels
        self.input_shape = tuple(input_shape)
        self.features = nn.Sequential(
            nn.Conv2d(c_in, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        flat = c2 * ((h // 2 - 4) // 2) * ((w // 2 - 4) // 2)
        self.classifier = nn.Sequential(nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.reshape(-1, *self.input_shape)).flatten(1))


class CNNFedAvg(nn.Module):
    """McMahan et al. 2017's CNN (sec. 3): two 5x5 conv layers (32, 64 channels), each followed by 2x2
    max pooling, a 512-unit fully connected ReLU layer and a softmax output (1,663,370 parameters on MNIST).
    """

    def __init__(self, num_classes: int = 10, input_shape: Sequence[int] = (1, 28, 28)) -> None:
        super().__init__()
        c_in, h, w = input_shape
        self.input_shape = tuple(input_shape)
        self.features = nn.Sequential(
            nn.Conv2d(c_in, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(64 * (h // 4) * (w // 4), 512), nn.ReLU(), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.reshape(-1, *self.input_shape)).flatten(1))


class _Block(nn.Module):
    """He et al. 2016's basic residual block, GroupNorm in place of BatchNorm (Hsieh et al. 2020).

    With ``noise`` (standard normal, the block output's shape), the output gains Wang et al.
    2019's diffusion term ``noise_std * std(out_i) * noise_i`` (see :class:`EnResNet`).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, groups: int, noise_std: float = 0.0) -> None:
        super().__init__()
        self.noise_std = noise_std
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(math.gcd(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(math.gcd(groups, c_out), c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.GroupNorm(math.gcd(groups, c_out), c_out))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)) + self.shortcut(x))
        if noise is None:
            return out
        # The reference code scales by torch.std(out) of the whole batch; per sample here, so a
        # sample's output never depends on the others in its (padded, vmapped) minibatch. The
        # 1e-12 keeps the gradient finite where a sample's activation is constant (std 0).
        std = (out.flatten(1).var(1) + 1e-12).sqrt().reshape(-1, 1, 1, 1)
        return out + self.noise_std * std * noise.reshape(out.shape)


class ResNet(nn.Module):
    """ResNets for 32x32 inputs with GroupNorm.

    depth 8 and 20 are He et al. 2016's CIFAR networks (sec. 4.2: 6n+2 layers, stages of 16/32/64
    channels, n = 1 or 3); depth 18 is the ImageNet ResNet-18 (stages of 64..512, two blocks each)
    with the usual 3x3 stride-1 stem and no max pooling for 32x32 images. ``width`` sets the
    first stage's channels (default 16, or 64 for depth 18; later stages double it).

    With ``noise_std > 0`` every block adds Gaussian noise to its output (:class:`EnResNet`); the
    forward then needs ``noise``, ``noise_numel`` standard-normal numbers per sample.
    """

    def __init__(
        self, depth: int = 20, num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32), groups: int = 2,
        width: int | None = None, noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        widths: tuple[int, ...]
        if depth in (8, 20):
            w0 = width or 16
            widths, blocks = (w0, 2 * w0, 4 * w0), (depth - 2) // 6
        elif depth == 18:
            w0 = width or 64
            widths, blocks = (w0, 2 * w0, 4 * w0, 8 * w0), 2
        else:
            raise FedsimError(f"model.depth: {depth} (allowed: 8, 20, 18)")
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False), nn.GroupNorm(math.gcd(groups, widths[0]), widths[0]), nn.ReLU()
        )
        layers: list[nn.Module] = []
        c, (h, w) = widths[0], self.input_shape[1:]
        self.noise_sizes: list[int] = []  # per sample, each block's output numel
        for i, width_i in enumerate(widths):
            for b in range(blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                layers.append(_Block(c, width_i, stride, groups, noise_std))
                c, h, w = width_i, (h - 1) // stride + 1, (w - 1) // stride + 1
                self.noise_sizes.append(c * h * w)
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)
        self.noise_numel = sum(self.noise_sizes) if noise_std > 0 else 0

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        out = self.stem(x.reshape(-1, *self.input_shape))
        if not self.noise_numel:
            out = self.layers(out)
        else:
            if noise is None:
                raise FedsimError("model: this ResNet injects noise (noise_std > 0) and needs a noise input; none was given")
            for block, z in zip(self.layers, noise.split(self.noise_sizes, dim=1)):
                out = block(out, z)
        return self.fc(out.mean(dim=(2, 3)))


class EnResNet(nn.Module):
    """An ensemble of ``ensemble`` jointly trained noisy ResNets, averaged at the output (EnResNet).

    Wang, Yuan, Shi and Osher, "ResNets Ensemble via the Feynman-Kac Formalism to Improve Natural
    and Robust Accuracies" (NeurIPS 2019, arXiv:1811.10745): each residual block is one Euler-
    Maruyama step of ``dx = F(x, w) dt + sigma dB_t`` ("residual mapping + Gaussian noise") and the
    members' average approximates the Feynman-Kac expectation. As in the authors' code
    (github.com/BaoWangMath/EnResNet, ``resnet_cifar.py``), the noise is added to each block's
    output after the residual sum, scaled by the activation's standard deviation,
    ``out + sigma * std(out) * z`` (their ``noise_coef``, 0.1 by default), the gradient flows
    through ``std``, noise is on in evaluation too, and the ensemble averages the members' logits.
    Deviations: fedsim's blocks are post-activation (the noise enters after the block's final
    ReLU, on the state passed to the next block), GroupNorm replaces BatchNorm, and ``std`` is per
    sample rather than over the whole batch.

    The noise is an explicit input: ``forward(x, noise)`` with ``noise`` of shape ``(N,
    noise_numel)`` (standard normal; member ``m``'s blocks read consecutive slices), so a run
    draws it from seeded streams and the model is a deterministic function of ``(x, noise)``.
    With ``noise_std = 0`` no noise is taken, and ``ensemble = 1`` is then exactly :class:`ResNet`
    (same parameter order, same initial weights for the same seed).
    """

    def __init__(
        self, depth: int = 20, num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32), groups: int = 2,
        width: int | None = None, ensemble: int = 1, noise_std: float = 0.1,
    ) -> None:
        super().__init__()
        members = [ResNet(depth, num_classes, input_shape, groups, width, noise_std) for _ in range(ensemble)]
        self.members = nn.ModuleList(members)
        self.member_noise = [m.noise_numel for m in members]  # member m reads the m-th consecutive slice
        self.noise_numel = sum(self.member_noise)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if not self.noise_numel:
            return torch.stack([m(x) for m in self.members]).mean(0)
        if noise is None:
            raise FedsimError("model.kind: enresnet with noise_std > 0 needs its forward noise; this code path gave none")
        chunks = noise.split(self.member_noise, dim=1)
        return torch.stack([m(x, z) for m, z in zip(self.members, chunks)]).mean(0)


class CharLSTM(nn.Module):
    """LEAF's Shakespeare model (Caldas et al. 2018): an 8-dimensional character embedding, two LSTM
    layers of 256 units, and a dense layer on the last position's output predicting the next character.

    The LSTM is written out (``i, f, g, o`` gates as ``torch.nn.LSTM``, Hochreiter and Schmidhuber
    1997) so ``torch.func.vmap`` can batch it over clients.
    """

    #: A time loop of small matmuls: the vectorized runtime trains it client by client on CPU.
    recurrent = True

    def __init__(self, vocab_size: int = 80, num_classes: int = 80, embed_dim: int = 8, hidden: int = 256, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.hidden = hidden
        # torch.nn.LSTM's parameterisation: input-to-gates (with bias) and hidden-to-gates weights.
        self.ih = nn.ModuleList(nn.Linear(embed_dim if i == 0 else hidden, 4 * hidden) for i in range(layers))
        self.hh = nn.ModuleList(nn.Linear(hidden, 4 * hidden, bias=False) for _ in range(layers))
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.embed(x.long())  # (N, T, E)
        for ih, hh in zip(self.ih, self.hh):
            # The input projections of all positions in one matmul; only h @ W_hh stays in the loop.
            # unbind, not gates_in[:, t]: the backward of T slices would zero-fill T full-size gradients.
            h = seq.new_zeros(seq.shape[0], self.hidden)
            c = h
            outs = []
            for step in ih(seq).unbind(1):
                i, f, g, o = (step + hh(h)).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            seq = torch.stack(outs, dim=1)
        return self.fc(seq[:, -1])


MODELS = ("logistic", "mlp", "cnn", "cnn_fedavg", "resnet", "enresnet", "char_lstm")
# Which kinds of input each model reads (see fedsim.data.datasets.Dataset.kind).
_ACCEPTS = {
    "logistic": ("image", "vector"),
    "mlp": ("image", "vector"),
    "cnn": ("image",),
    "cnn_fedavg": ("image",),
    "resnet": ("image",),
    "enresnet": ("image",),
    "char_lstm": ("sequence",),
}


def build_model(
    kind: str,
    *,
    seed: int,
    input_shape: Sequence[int] = (1, 28, 28),
    num_classes: int = 10,
    input_kind: str = "image",
    vocab_size: int | None = None,
    dataset: str = "the data set",
    hidden: Sequence[int] = (200,),
    channels: Sequence[int] = (6, 16),
    depth: int = 20,
    norm_groups: int = 2,
    width: int | None = None,
    ensemble: int = 1,
    noise_std: float = 0.1,
    embed_dim: int = 8,
    lstm_hidden: int = 256,
    lstm_layers: int = 2,
) -> nn.Module:
    """Build model ``kind`` for inputs of ``input_shape`` and ``input_kind`` with ``num_classes`` classes.

    Weights are drawn from the ``(seed, "init")`` stream, not global RNG state. A model that
    cannot read the data set's inputs is a :class:`FedsimError` naming both. ``width`` (resnet,
    enresnet) is the first stage's channels (None: the depth's default); ``ensemble`` and
    ``noise_std`` are EnResNet's n and sigma.
    """
    if kind not in _ACCEPTS:
        raise FedsimError(f"model.kind: unknown model '{kind}' (allowed: {', '.join(MODELS)})")
    shape = tuple(int(s) for s in input_shape)
    described = f"data.dataset={dataset} ({input_kind} {'x'.join(map(str, shape))})"
    if input_kind not in _ACCEPTS[kind]:
        raise FedsimError(f"model.kind: {kind} reads {' or '.join(_ACCEPTS[kind])} inputs, not {described}")
    if _ACCEPTS[kind] == ("image",) and len(shape) != 3:
        raise FedsimError(f"model.kind: {kind} needs (C, H, W) images, got {described}")
    if kind == "cnn" and min(shape[1:]) < 12:
        raise FedsimError(f"model.kind: cnn needs images of at least 12x12, got {described}")
    if kind in ("resnet", "enresnet") and depth not in (8, 20, 18):
        raise FedsimError(f"model.depth: {depth} (allowed: 8, 20, 18)")
    if width is not None and width < 1:
        raise FedsimError(f"model.width: {width} (allowed: an integer >= 1, or null for the depth's default)")
    if kind == "enresnet" and ensemble < 1:
        raise FedsimError(f"model.ensemble: {ensemble} (allowed: an integer >= 1)")
    if kind == "enresnet" and not (noise_std >= 0 and math.isfinite(noise_std)):
        raise FedsimError(f"model.noise_std: {noise_std} (allowed: a finite number >= 0)")
    in_features = math.prod(shape)
    builders = {
        "logistic": lambda: LogisticRegression(in_features, num_classes),
        "mlp": lambda: MLP(in_features, hidden, num_classes),
        "cnn": lambda: CNN(num_classes, channels, shape),
        "cnn_fedavg": lambda: CNNFedAvg(num_classes, shape),
        "resnet": lambda: ResNet(depth, num_classes, shape, norm_groups, width),
        "enresnet": lambda: EnResNet(depth, num_classes, shape, norm_groups, width, ensemble, noise_std),
        "char_lstm": lambda: CharLSTM(vocab_size or num_classes, num_classes, embed_dim, lstm_hidden, lstm_layers),
    }
    # nn.Module initialisers draw from the global generator; fork it so the caller's state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return builders[kind]()
