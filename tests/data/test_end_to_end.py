"""End to end on real data: Fashion-MNIST and Synthetic(1, 1) train above stated accuracies in seconds."""

from __future__ import annotations

import fedsim


def config(tmp_path, data, model, **algorithm):
    return {
        "seed": 0,
        "data": data,
        "model": model,
        "algorithm": {"kind": "fedavg", "clients_per_round": 10, "batch_size": 32, "lr": 0.05, **algorithm},
        "runtime": {"kind": "vectorized", "device": "cpu"},
        "evaluation": {"every": 100},
        "output": {"dir": str(tmp_path / "run"), "plot": False},
    }


def test_fashion_mnist_logistic_reaches_78_percent(tmp_path):
    # Centralised logistic regression reaches about 84% (Xiao et al. 2017's benchmark); 4 rounds
    # of FedAvg over 10 IID clients land near 0.81 (measured); chance is 0.10.
    cfg = config(tmp_path, {"dataset": "fashion_mnist", "num_clients": 20, "partition": {"kind": "iid"}},
                 {"kind": "logistic"}, rounds=4, local_steps=40)
    assert fedsim.run(cfg).final_accuracy > 0.78


def test_synthetic_logistic_learns_well_above_the_majority_class(tmp_path):
    # Synthetic(1, 1), 30 natural devices: each device's labels come from its own linear model,
    # so one global model cannot fit all; measured about 0.75 after 30 rounds (majority class: below 0.3).
    cfg = config(tmp_path, {"dataset": "synthetic", "synthetic": {"alpha": 1.0, "beta": 1.0, "num_devices": 30},
                            "partition": {"kind": "natural"}},
                 {"kind": "logistic"}, rounds=30, local_steps=20, batch_size=10, lr=0.01)
    result = fedsim.run(cfg)
    assert result.final_accuracy > 0.6


def test_a_cohort_larger_than_the_natural_clients_is_refused(tmp_path):
    import pytest

    from fedsim.errors import FedsimError

    cfg = config(tmp_path, {"dataset": "synthetic", "synthetic": {"num_devices": 5}, "partition": {"kind": "natural"}},
                 {"kind": "logistic"}, rounds=1)
    with pytest.raises(FedsimError, match="algorithm.clients_per_round: 10 exceeds the 5 clients of synthetic's natural partition"):
        fedsim.run(cfg)
    assert not (tmp_path / "run").exists()
