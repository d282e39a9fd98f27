"""The federated dataset: the whole training set as one tensor plus each client's index list.

Keeping one tensor (rather than one dataset object per client) is what lets the vectorized
runtime gather a whole cohort's minibatches with one indexing operation, and lets all data be
moved to a GPU once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedsim.data.mnist import load_mnist
from fedsim.data.partition import dirichlet_partition, iid_partition, shard_partition
from fedsim.errors import FedsimError
from fedsim.seeding import numpy_generator

__all__ = ["FederatedData", "PARTITIONERS", "build_federated_data"]

Partitioner = Callable[..., list[np.ndarray]]
PARTITIONERS: dict[str, Partitioner] = {
    "iid": iid_partition,
    "dirichlet": dirichlet_partition,
    "shards": shard_partition,
}


@dataclass
class FederatedData:
    """Training tensors, each client's sample indices into them, and the global test set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    client_indices: list[torch.Tensor]
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_clients(self) -> int:
        return len(self.client_indices)

    def client_sizes(self) -> torch.Tensor:
        return torch.tensor([len(i) for i in self.client_indices])

    def client_data(self, client: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.client_indices[client]
        return self.x_train[idx], self.y_train[idx]

    def to(self, device: torch.device | str) -> "FederatedData":
        return FederatedData(
            self.x_train.to(device),
            self.y_train.to(device),
            [i.to(device) for i in self.client_indices],
            self.x_test.to(device),
            self.y_test.to(device),
        )


def build_federated_data(
    *,
    dataset: str,
    num_clients: int,
    partition: str | Sequence[Sequence[int]] | Partitioner,
    partition_params: dict[str, Any] | None = None,
    seed: int,
) -> FederatedData:
    """Load ``dataset`` and split its training set among ``num_clients`` clients.

    ``partition`` is a built-in partitioner's name, a user function
    ``f(labels, num_clients, rng, **partition_params) -> list[index array]``, or the index lists
    themselves. The split is drawn from the ``(seed, "partition")`` stream.
    """
    if dataset != "mnist":
        raise FedsimError(f"data.dataset: unknown dataset '{dataset}' (allowed: mnist)")
    x_train, y_train, x_test, y_test = load_mnist()
    params = dict(partition_params or {})
    if isinstance(partition, str):
        if partition not in PARTITIONERS:
            raise FedsimError(f"data.partition.kind: unknown partition '{partition}' (allowed: {', '.join(PARTITIONERS)})")
        parts = PARTITIONERS[partition](y_train, num_clients, numpy_generator(seed, "partition"), **params)
    elif callable(partition):
        parts = partition(y_train, num_clients, numpy_generator(seed, "partition"), **params)
    else:
        parts = [np.asarray(p, dtype=np.int64) for p in partition]
    if len(parts) != num_clients:
        raise FedsimError(f"partition: got {len(parts)} client index lists for data.num_clients={num_clients}")
    if any(len(p) == 0 for p in parts):
        raise FedsimError("partition: every client needs at least one sample")
    return FederatedData(
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        [torch.as_tensor(np.asarray(p), dtype=torch.long) for p in parts],
        torch.from_numpy(x_test),
        torch.from_numpy(y_test),
    )
