"""Your own torch model and your own client split, with everything else from a config.

Each client gets the digits of one parity class plus a random slice of the others: a split no
built-in partitioner makes. The model is a two-layer tanh network defined here.

    FEDSIM_DATA=../shared/data python examples/custom_model_and_partition.py
"""

import numpy as np
from torch import nn

import fedsim
from fedsim.config import ExperimentConfig


class TanhNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 10))

    def forward(self, x):
        return self.body(x)


def parity_partition(labels: np.ndarray, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Clients 0..K/2-1 hold mostly even digits, the rest mostly odd ones (80/20)."""
    even, odd = rng.permutation(np.flatnonzero(labels % 2 == 0)), rng.permutation(np.flatnonzero(labels % 2 == 1))
    half = num_clients // 2
    major_even, minor_odd = np.split(even, [int(0.8 * len(even))]), np.split(odd, [int(0.8 * len(odd))])
    parts = [[] for _ in range(num_clients)]
    for k, chunk in enumerate(np.array_split(major_even[0], half)):
        parts[k].append(chunk)
    for k, chunk in enumerate(np.array_split(minor_odd[0], num_clients - half)):
        parts[half + k].append(chunk)
    for k, chunk in enumerate(np.array_split(np.concatenate([major_even[1], minor_odd[1]]), num_clients)):
        parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


config = ExperimentConfig.model_validate(
    {
        "data": {"num_clients": 20},
        "algorithm": {"kind": "fedavg", "rounds": 10, "clients_per_round": 5, "lr": 0.05},
        "output": {"dir": "runs/custom-example"},
    }
)
result = fedsim.run(config, model=TanhNet(), partition=parity_partition)
print(f"final accuracy {result.final_accuracy:.4f} after {len(result.history)} rounds; run folder {result.run_dir}")
