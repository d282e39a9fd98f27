"""Small deterministic federations for the federated-family tests: random features on a logistic
model, and a heterogeneous quadratic whose global minimiser is known in closed form."""

from __future__ import annotations

import torch

from fedsim.data.federated import FederatedData
from fedsim.models import FunctionalModel, build_model


def tiny_federation(sizes: list[int], seed: int = 0) -> FederatedData:
    """Clients of the given sizes holding random 784-feature samples with random labels."""
    gen = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    x, y = torch.randn(n, 784, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    bounds = torch.tensor([0, *sizes]).cumsum(0)
    idx = [torch.arange(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    return FederatedData(x, y, idx, x[:10], y[:10])


def logistic() -> FunctionalModel:
    return FunctionalModel(build_model("logistic", seed=0))


class QuadraticModel:
    """``f_k(w) = mean_i 1/2 sum_j a_ij (w_j - b_ij)^2`` with sample rows ``x_i = [a_i, b_i]``.

    Duck-types the part of :class:`~fedsim.models.FunctionalModel` that local SGD uses.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def to(self, device: torch.device | str) -> "QuadraticModel":
        return self

    def loss_and_grad(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, : self.dim], x[:, self.dim :]
        return (0.5 * a * (w - b) ** 2).sum(1).mean(), (a * (w - b)).mean(0)


def heterogeneous_quadratic(num_clients: int = 4, samples: int = 6, dim: int = 5, seed: int = 0) -> tuple[FederatedData, QuadraticModel, torch.Tensor]:
    """Clients with different curvatures and minimisers; returns the data, the model and the
    minimiser ``w* = sum a b / sum a`` (coordinate-wise) of the uniform average of the client losses."""
    gen = torch.Generator().manual_seed(seed)
    n = num_clients * samples
    # Curvature differs by client (0.2 .. 2), so local steps drift towards each client's own minimiser.
    scale = torch.linspace(0.2, 2.0, num_clients).repeat_interleave(samples)[:, None]
    a = scale * (0.5 + torch.rand(n, dim, generator=gen, dtype=torch.float64))
    b = 3.0 * torch.randn(num_clients, 1, dim, generator=gen, dtype=torch.float64).expand(num_clients, samples, dim).reshape(n, dim)
    b = b + 0.1 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    x = torch.cat([a, b], 1)
    idx = [torch.arange(k * samples, (k + 1) * samples) for k in range(num_clients)]
    y = torch.zeros(n, dtype=torch.long)
    w_star = (a * b).sum(0) / a.sum(0)
    return FederatedData(x, y, idx, x[:1], y[:1]), QuadraticModel(dim), w_star
