"""Data: the data sets (MNIST, Fashion-MNIST, LEAF, CIFAR, Synthetic, custom), partitioners, and the
federated dataset the runtimes read."""

from fedsim.data.datasets import DATASETS, Dataset, load_dataset
from fedsim.data.federated import FederatedData, build_federated_data
from fedsim.data.mnist import load_idx_set, load_mnist
from fedsim.data.partition import (
    dirichlet_partition,
    dirichlet_quantity_partition,
    iid_partition,
    natural_partition,
    pathological_partition,
    quantity_skew_partition,
    shard_partition,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "FederatedData",
    "build_federated_data",
    "dirichlet_partition",
    "dirichlet_quantity_partition",
    "iid_partition",
    "load_dataset",
    "load_idx_set",
    "load_mnist",
    "natural_partition",
    "pathological_partition",
    "quantity_skew_partition",
    "shard_partition",
]
