"""The federated dataset: the whole training set as one tensor plus each client's index list.

Keeping one tensor (rather than one dataset object per client) is what lets the vectorized
runtime gather a whole cohort's minibatches with one indexing operation, and lets all data be
moved to a GPU once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from fedsim.data.augment import Augmentation
from fedsim.data.datasets import Dataset, load_dataset
from fedsim.data.partition import (
    dirichlet_partition,
    dirichlet_quantity_partition,
    iid_partition,
    natural_partition,
    pathological_partition,
    quantity_skew_partition,
    shard_partition,
)
from fedsim.errors import FedsimError
from fedsim.seeding import numpy_generator

__all__ = ["FederatedData", "PARTITIONERS", "build_federated_data"]

Partitioner = Callable[..., list[np.ndarray]]
PARTITIONERS: dict[str, Partitioner] = {
    "iid": iid_partition,
    "dirichlet": dirichlet_partition,
    "shards": shard_partition,
    "pathological": pathological_partition,
    "quantity_skew": quantity_skew_partition,
    "dirichlet_quantity": dirichlet_quantity_partition,
}
NATURAL = "natural"


@dataclass
class FederatedData:
    """Training tensors, each client's sample indices into them, and the global test set.

    ``input_shape``, ``num_classes``, ``kind`` and ``vocab_size`` describe the samples (see
    :class:`~fedsim.data.datasets.Dataset`); models are sized from them. ``client_names`` are the
    clients' natural ids (writer, role, device) under a natural partition, else None.
    ``augment`` is the train-time augmentation runtimes apply through :meth:`for_round`.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    client_indices: list[torch.Tensor]
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...] = (1, 28, 28)
    num_classes: int = 10
    kind: str = "image"
    vocab_size: int | None = None
    client_names: list[str] | None = field(default=None)
    name: str = "mnist"
    augment: Augmentation | None = None

    @property
    def num_clients(self) -> int:
        return len(self.client_indices)

    def client_sizes(self) -> torch.Tensor:
        return torch.tensor([len(i) for i in self.client_indices])

    def client_data(self, client: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The client's samples, in index order: a view when they are one block of rows, else a copy."""
        idx = self.client_indices[client]
        if len(idx) and torch.equal(idx, torch.arange(int(idx[0]), int(idx[0]) + len(idx), device=idx.device)):
            # One contiguous block (a single IID client, say): slicing shares memory, where
            # indexing would copy the whole client every round.
            lo, hi = int(idx[0]), int(idx[0]) + len(idx)
            return self.x_train[lo:hi], self.y_train[lo:hi]
        return self.x_train[idx], self.y_train[idx]

    def for_round(self, cohort: Sequence[int], seed: int, rnd: int) -> "FederatedData":
        """The training data ``cohort`` sees in round ``rnd``: this data set itself without
        augmentation; with it, a compact copy holding only the cohort's samples, augmented on
        this data's device (other clients appear empty; sizes and sample order are unchanged).
        """
        if self.augment is None:
            return self
        rows = [self.client_indices[c] for c in cohort]
        flat = torch.cat(rows) if rows else self.client_indices[0][:0]
        sizes = [len(r) for r in rows]
        x = self.augment.cohort(self.x_train.index_select(0, flat), sizes, list(cohort), seed, rnd)
        empty = flat[:0]
        indices = [empty] * self.num_clients
        start = 0
        for c, n in zip(cohort, sizes):
            indices[c] = torch.arange(start, start + n, device=flat.device)
            start += n
        return replace(self, x_train=x, y_train=self.y_train.index_select(0, flat), client_indices=indices, augment=None)

    def to(self, device: torch.device | str) -> "FederatedData":
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            client_indices=[i.to(device) for i in self.client_indices],
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )


def build_federated_data(
    *,
    dataset: str | Dataset,
    num_clients: int,
    partition: str | Sequence[Sequence[int]] | Partitioner,
    partition_params: dict[str, Any] | None = None,
    seed: int,
    dataset_params: dict[str, Any] | None = None,
) -> FederatedData:
    """Load ``dataset`` (a name, with ``dataset_params`` for :func:`~fedsim.data.datasets.load_dataset`,
    or a :class:`~fedsim.data.datasets.Dataset`) and split its training set among clients.

    ``partition`` is a built-in partitioner's name, a user function
    ``f(labels, num_clients, rng, **partition_params) -> list[index array]``, or the index lists
    themselves. The split is drawn from the ``(seed, "partition")`` stream. ``natural`` makes one
    client per natural id of the data set (``num_clients`` is then unused; ``max_clients`` in
    ``partition_params`` sub-samples them).
    """
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, seed=seed, **(dataset_params or {}))
    x_train, y_train = ds.x_train, ds.y_train
    params = dict(partition_params or {})
    rng = numpy_generator(seed, "partition")
    names: list[str] | None = None
    if partition == NATURAL:
        if ds.client_id is None:
            raise FedsimError(
                f"data.partition.kind: natural needs a data set with client ids (femnist, shakespeare, synthetic, or custom with "
                f"client_id); {ds.name} has none"
            )
        parts, kept = natural_partition(ds.client_id, rng, **params)
        names = [ds.client_names[int(k)] if ds.client_names else str(int(k)) for k in kept]
        num_clients = len(parts)
    elif isinstance(partition, str):
        if partition not in PARTITIONERS:
            allowed = ", ".join([*PARTITIONERS, NATURAL])
            raise FedsimError(f"data.partition.kind: unknown partition '{partition}' (allowed: {allowed})")
        parts = PARTITIONERS[partition](y_train, num_clients, rng, **params)
    elif callable(partition):
        parts = partition(y_train, num_clients, rng, **params)
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
        torch.from_numpy(ds.x_test),
        torch.from_numpy(ds.y_test),
        input_shape=ds.input_shape,
        num_classes=ds.num_classes,
        kind=ds.kind,
        vocab_size=ds.vocab_size,
        client_names=names,
        name=ds.name,
    )
