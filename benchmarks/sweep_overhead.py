"""Per-trial overhead of `fedsim sweep` on each backend: what the sweep costs beyond its trials' own work.

The same N tiny trials (logistic FedAvg on MNIST, 2 rounds) run one at a time (``parallel=1``) on
the inline, pool and tune backends, in one process, one after the other. A trial's own time is
``trial.json``'s ``elapsed_s`` (data loading, building, rounds, writing its folder, inside the
worker); the overhead per trial is ``(sweep wall time - sum of elapsed_s) / N``: process starts,
imports, Ray start and scheduling, result collection and the sweep's own outputs.

    python benchmarks/sweep_overhead.py --trials 8 --out /tmp/sweep_overhead
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from fedsim.config.sweep import SweepConfig
from fedsim.studies.sweep import run_sweep


def base(out: Path) -> dict:
    return {
        "seed": 0,
        "data": {"num_clients": 20, "partition": {"kind": "iid"}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 4, "lr": 0.05, "local_steps": 5},
        "runtime": {"kind": "serial", "device": "cpu"},
        "output": {"dir": str(out / "unused"), "plot": False},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--backends", default="inline,pool,tune")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sweep_overhead"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    spec = SweepConfig(grid={"algorithm.lr": [0.01 * (i + 1) for i in range(args.trials)]}, parallel=1)
    results = []
    for backend in args.backends.split(","):
        load_before = os.getloadavg()
        start = time.perf_counter()
        result = run_sweep(base(args.out), spec, out=args.out / backend, backend=backend, plot=False)
        wall = time.perf_counter() - start
        elapsed = [json.loads((o.dir / "trial.json").read_text())["elapsed_s"] for o in result.outcomes]
        row = {
            "backend": backend, "trials": len(elapsed), "wall_s": wall, "trial_elapsed_s_sum": sum(elapsed),
            "trial_elapsed_s_mean": sum(elapsed) / len(elapsed), "overhead_per_trial_s": (wall - sum(elapsed)) / len(elapsed),
            "load_before": load_before, "load_after": os.getloadavg(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "overhead.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
