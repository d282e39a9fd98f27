"""The event-driven core's cost against synchronous rounds, on the vectorized runtime.

FedBuff with ``buffer_size = concurrency = clients_per_round`` on equal device speeds computes
exactly FedAvg (a test checks the equality); timing both side by side isolates what the event
queue, the per-version dispatch and the clock cost. Runs alternate (sync, async, sync, ...) and
the ratio of medians is printed as JSON with the load average and thread count.

    FEDSIM_DATA=../shared/data python benchmarks/systems_overhead.py [--rounds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

import torch

import fedsim

BASE = {
    "seed": 0,
    "data": {"num_clients": 100, "partition": {"kind": "dirichlet", "alpha": 0.5}},
    "model": {"kind": "mlp", "hidden": [200]},
    "runtime": {"kind": "vectorized", "device": "cpu"},
    "evaluation": {"every": 1000},
    "output": {"plot": False},
}
EQUAL = {"devices": {"kind": "named", "name": "uniform"}}


def timed(cfg: dict) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        result = fedsim.run(cfg, out=out)
    return result.history[-1]["wall_s"], result.final_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    algo = {"rounds": args.rounds, "clients_per_round": 10, "batch_size": 32, "lr": 0.05}
    sync = {**BASE, "algorithm": {"kind": "fedavg", **algo}, "systems": EQUAL}
    fedbuff = {**BASE, "algorithm": {"kind": "fedbuff", "buffer_size": 10, **algo}, "systems": EQUAL}
    times: dict[str, list[float]] = {"fedavg_sync": [], "fedbuff_event_driven": []}
    accuracy = {}
    for _ in range(args.repeats):
        for name, cfg in (("fedavg_sync", sync), ("fedbuff_event_driven", fedbuff)):
            wall, accuracy[name] = timed(cfg)
            times[name].append(wall)
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "benchmark": "systems_overhead",
        "rounds": args.rounds,
        "clients_per_round": 10,
        "seconds_median": medians,
        "seconds_all": times,
        "final_accuracy": accuracy,
        "ratio_event_driven_over_sync": medians["fedbuff_event_driven"] / medians["fedavg_sync"],
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
    }, indent=2))


if __name__ == "__main__":
    main()
