"""End to end on real MNIST, Dirichlet(0.1) labels: SCAFFOLD and FedProx against FedAvg."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.data.mnist import load_mnist
from fedsim.data.partition import dirichlet_partition
from fedsim.experiment import run
from fedsim.seeding import numpy_generator

SUBSET = 8000  # the first 8,000 training images keep this test to seconds


def noniid_split(num_clients: int = 10) -> list[np.ndarray]:
    labels = load_mnist()[1][:SUBSET]
    return dirichlet_partition(labels, num_clients, numpy_generator(0, "partition"), alpha=0.1, min_size=20)


@pytest.mark.slow
def test_scaffold_and_fedprox_not_worse_than_fedavg_on_dirichlet_mnist(tmp_path):
    split = noniid_split()
    common = {"rounds": 12, "participation": {"kind": "full"}, "local_epochs": 2, "batch_size": 50, "lr": 0.05}
    accuracy = {}
    for kind, extra in [("fedavg", {}), ("scaffold", {}), ("fedprox", {"mu": 0.1})]:
        cfg = {
            "seed": 0,
            "data": {"num_clients": 10},
            "model": {"kind": "logistic"},
            "algorithm": {"kind": kind, **common, **extra},
            "runtime": {"kind": "serial", "device": "cpu"},
            "evaluation": {"every": 12},
            "output": {"plot": False},
        }
        accuracy[kind] = run(cfg, partition=split, out=tmp_path / kind).final_accuracy
    print(accuracy)
    assert accuracy["fedavg"] > 0.80, accuracy
    assert accuracy["scaffold"] >= accuracy["fedavg"] - 0.005, accuracy
    assert accuracy["fedprox"] >= accuracy["fedavg"] - 0.005, accuracy
