"""Per-client evaluation on each client's own held-out split: the egalitarian view of a model.

The global test accuracy is the utilitarian view (the average over clients); the egalitarian
view is the worst client's loss, the objective of agnostic federated learning (Mohri, Sivek and
Suresh, "Agnostic Federated Learning", ICML 2019). Each client's held-out split is a fixed random fraction of its own data, removed
from its training set, so the accuracy a client sees is measured on its own distribution.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.seeding import torch_generator

__all__ = ["client_accuracies", "fairness_metrics", "split_client_holdout"]


def split_client_holdout(data: FederatedData, fraction: float, seed: int) -> tuple[FederatedData, list[torch.Tensor]]:
    """Hold out ``floor(fraction * n_k)`` of client k's samples (at least one when ``n_k >= 2``).

    Returns the federation with the reduced training indices and each client's held-out indices
    (into ``x_train``). Client k's split comes from the ``(seed, "holdout", k)`` stream.
    """
    train, held = [], []
    for k, idx in enumerate(data.client_indices):
        n = len(idx)
        n_held = min(max(math.floor(fraction * n), 1), n - 1) if n >= 2 else 0
        perm = idx[torch.randperm(n, generator=torch_generator(seed, "holdout", k)).to(idx.device)]
        held.append(perm[:n_held].sort().values)
        train.append(perm[n_held:].sort().values)
    return dataclasses.replace(data, client_indices=train), held


@torch.no_grad()
def client_accuracies(
    model: FunctionalModel, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, holdout: list[torch.Tensor], batch_size: int = 4096,
    noise_seed: int | None = None,
) -> torch.Tensor:
    """Accuracy of ``params`` on every client's held-out samples (clients without any are left out).

    A noise model's forward noise comes from a generator seeded with ``noise_seed``, batch by batch.
    """
    sizes = torch.tensor([len(h) for h in holdout])
    owner = torch.repeat_interleave(torch.arange(len(holdout)), sizes)
    idx = torch.cat(holdout).to(x.device)
    batch_size = model.eval_batch_size(batch_size)
    generator = None if noise_seed is None else torch.Generator().manual_seed(noise_seed)
    hits = []
    for s in range(0, len(idx), batch_size):
        xb, yb = x[idx[s : s + batch_size]], y[idx[s : s + batch_size]]
        hits.append((model.logits(params, xb, model.draw_noise(len(xb), generator, xb)).argmax(1) == yb).cpu())
    correct = torch.cat(hits)
    per_client = torch.zeros(len(holdout), dtype=torch.float64).index_add_(0, owner, correct.double())
    keep = sizes > 0
    return per_client[keep] / sizes[keep]


def fairness_metrics(accuracies: torch.Tensor) -> dict[str, float]:
    """Mean, 10th percentile (linear interpolation) and worst per-client accuracy."""
    return {
        "client_acc_mean": accuracies.mean().item(),
        "client_acc_p10": torch.quantile(accuracies, 0.1).item(),
        "client_acc_worst": accuracies.min().item(),
    }
