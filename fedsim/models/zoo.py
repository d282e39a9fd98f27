"""The built-in models for 28x28 grey images with 10 classes (MNIST).

All take flattened or image-shaped input; the CNN reshapes to ``(N, 1, 28, 28)`` itself so every
model reads the same ``(N, 784)`` data tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedsim.errors import FedsimError
from fedsim.seeding import derive_seed

__all__ = ["LogisticRegression", "MLP", "CNN", "build_model"]


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
    """LeNet-5-style CNN (LeCun et al. 1998) for 28x28 inputs: two conv/pool blocks, three dense layers."""

    def __init__(self, num_classes: int = 10, channels: Sequence[int] = (6, 16)) -> None:
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(c2 * 25, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.reshape(-1, 1, 28, 28)).flatten(1))


def build_model(kind: str, *, seed: int, hidden: Sequence[int] = (200,), channels: Sequence[int] = (6, 16)) -> nn.Module:
    """Build a model with weights drawn from the ``(seed, "init")`` stream, not global RNG state."""
    builders = {
        "logistic": lambda: LogisticRegression(),
        "mlp": lambda: MLP(hidden=hidden),
        "cnn": lambda: CNN(channels=channels),
    }
    if kind not in builders:
        raise FedsimError(f"model.kind: unknown model '{kind}' (allowed: {', '.join(builders)})")
    # nn.Module initialisers draw from the global generator; fork it so the caller's state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return builders[kind]()
