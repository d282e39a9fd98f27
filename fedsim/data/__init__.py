"""Data: MNIST from IDX files, partitioners, and the federated dataset the runtimes read."""

from fedsim.data.federated import FederatedData, build_federated_data
from fedsim.data.mnist import load_mnist
from fedsim.data.partition import dirichlet_partition, iid_partition, shard_partition

__all__ = ["FederatedData", "build_federated_data", "dirichlet_partition", "iid_partition", "load_mnist", "shard_partition"]
