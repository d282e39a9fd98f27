"""fedsim's serial runtime against a hand-written torch FedAvg loop on the same workload.

Both train the quickstart federation (MNIST, 100 clients, Dirichlet 0.5, 10 per round, MLP 200,
1 local epoch, batch 32, lr 0.05) from the same initial weights, on the same cohorts, and evaluate
on the test set every round. Runs alternate (fedsim, hand, fedsim, hand, ...) so that load on a
shared machine hits both alike; the ratio of medians is reported.

    FEDSIM_DATA=../shared/data python benchmarks/overhead.py [--rounds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F

import fedsim
from fedsim.algorithms.sampling import uniform_sample
from fedsim.data import build_federated_data
from fedsim.models import build_model
from fedsim.seeding import torch_generator

CONFIG = {
    "seed": 0,
    "data": {"num_clients": 100, "partition": {"kind": "dirichlet", "alpha": 0.5}},
    "model": {"kind": "mlp", "hidden": [200]},
    "algorithm": {"kind": "fedavg", "clients_per_round": 10, "local_epochs": 1, "batch_size": 32, "lr": 0.05},
    "runtime": {"kind": "serial", "device": "cpu"},
    "output": {"plot": False},
}


def hand_written(rounds: int) -> tuple[float, float]:
    """FedAvg as one would write it by hand: nn.Module, torch.optim.SGD, state_dict averaging."""
    data = build_federated_data(dataset="mnist", num_clients=100, partition="dirichlet", partition_params={"alpha": 0.5}, seed=0)
    global_model = build_model("mlp", seed=0, hidden=[200])
    start = time.perf_counter()
    for rnd in range(rounds):
        cohort = uniform_sample(100, 10, torch_generator(0, "sampling", rnd))
        states, sizes = [], []
        for k in cohort:
            x, y = data.client_data(k)
            model = copy.deepcopy(global_model)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            gen = torch_generator(0, "batches", rnd, k)
            for idx in torch.randperm(len(y), generator=gen).split(32):
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            states.append(model.state_dict())
            sizes.append(len(y))
        total = sum(sizes)
        global_model.load_state_dict({name: sum(s[name] * (n / total) for s, n in zip(states, sizes)) for name in states[0]})
        with torch.no_grad():
            accuracy = (global_model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    return time.perf_counter() - start, accuracy


def with_fedsim(rounds: int, tmp: str) -> tuple[float, float]:
    result = fedsim.run(CONFIG, overrides=[f"algorithm.rounds={rounds}"], out=tmp)
    # The summary's wall time covers the round loop (training and evaluation), as the hand loop's does.
    return result.summary["wall_s"], result.final_accuracy


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fedsim_runs, hand_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            fedsim_runs.append(with_fedsim(args.rounds, f"{tmp}/run{i}"))
            hand_runs.append(hand_written(args.rounds))
    fedsim_s = statistics.median(t for t, _ in fedsim_runs)
    hand_s = statistics.median(t for t, _ in hand_runs)
    print(json.dumps({
        "workload": "fedavg mnist mlp200, 100 clients dirichlet0.5, 10/round, E=1, B=32",
        "rounds": args.rounds,
        "repeats": args.repeats,
        "fedsim_serial_wall_s": round(fedsim_s, 3),
        "hand_written_wall_s": round(hand_s, 3),
        "overhead_ratio": round(fedsim_s / hand_s, 3),
        "fedsim_accuracy": fedsim_runs[-1][1],
        "hand_written_accuracy": hand_runs[-1][1],
        "target_ratio_max": 1.2,
    }, indent=2))


if __name__ == "__main__":
    main()
