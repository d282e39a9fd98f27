"""Scale: 10,000 MNIST clients, FedAvg and SCAFFOLD, seconds per round and peak memory.

Each point runs in a fresh process (so its peak RSS is its own): 10,000 IID clients (6 samples
each), logistic regression by default, 1 local epoch, batch 32, on the vectorized runtime.
SCAFFOLD keeps a control variate per client in the disk-spilling client state store, so memory
stays flat in the number of clients ever sampled. Seconds per round is the median over the
rounds after the first (which pays one-time start-up); the target is a peak RSS under 2 GB at
100 clients per round. The curve is seconds per round against clients per round.

    PYTHONPATH=. FEDSIM_DATA=../shared/data python benchmarks/scale.py \
        [--clients-per-round 10 100 1000] [--rounds 5] [--runtime vectorized] [--checkpoint-every N] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NUM_CLIENTS = 10_000
RSS_TARGET_MB = 2048


def one_point(algorithm: str, per_round: int, rounds: int, runtime: str, model: str, checkpoint_every: int = 0) -> dict[str, Any]:
    """Run one configuration in this process and measure it."""
    from fedsim.experiment import Experiment, resolve_config
    from fedsim.output import RunFolder

    with tempfile.TemporaryDirectory() as tmp:
        algo: dict[str, Any] = {
            "kind": algorithm, "rounds": rounds, "clients_per_round": per_round, "local_epochs": 1, "batch_size": 32, "lr": 0.1,
        }
        if algorithm == "scaffold":
            algo["client_state_dir"] = str(Path(tmp) / "client_states")
        cfg = resolve_config({
            "seed": 0,
            "data": {"num_clients": NUM_CLIENTS, "partition": {"kind": "iid"}},
            "model": {"kind": model},
            "algorithm": algo,
            "runtime": {"kind": runtime, "device": "cpu"},
            "evaluation": {"every": rounds},
            "output": {"dir": tmp, "plot": False, **({"checkpoint_every": checkpoint_every} if checkpoint_every else {})},
        })
        start = time.perf_counter()
        experiment = Experiment(cfg)
        setup_s = time.perf_counter() - start
        try:
            result = experiment.run(RunFolder.create(Path(tmp) / "run"))
        finally:
            experiment.runtime.close()
    walls = [0.0] + [row["wall_s"] for row in result.history]
    per_round_s = [b - a for a, b in zip(walls, walls[1:])]
    # ru_maxrss is in KiB on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "algorithm": algorithm,
        "clients_per_round": per_round,
        "s_per_round": round(statistics.median(per_round_s[1:] or per_round_s), 4),
        "first_round_s": round(per_round_s[0], 4),
        "setup_s": round(setup_s, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "final_accuracy": result.final_accuracy,
        "checkpoint_every": checkpoint_every or None,
        "torch_threads": __import__("torch").get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients-per-round", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--algorithms", nargs="+", default=["fedavg", "scaffold"], choices=["fedavg", "scaffold"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runtime", default="vectorized", choices=["serial", "vectorized", "ray"])
    parser.add_argument("--model", default="logistic", choices=["logistic", "mlp", "cnn"])
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="write a checkpoint every N rounds (with states on disk it streams: peak RSS stays flat)")
    parser.add_argument("--one", nargs=2, metavar=("ALGORITHM", "PER_ROUND"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_point(args.one[0], int(args.one[1]), args.rounds, args.runtime, args.model, args.checkpoint_every)))
        return
    points = []
    for algorithm in args.algorithms:
        for per_round in args.clients_per_round:
            cmd = [sys.executable, __file__, "--one", algorithm, str(per_round), "--rounds", str(args.rounds),
                   "--runtime", args.runtime, "--model", args.model, "--checkpoint-every", str(args.checkpoint_every)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            points.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(points[-1]), file=sys.stderr)
    report = {
        "load_average_1m_at_end": os.getloadavg()[0],
        "workload": f"{NUM_CLIENTS} IID MNIST clients, {args.model}, E=1, B=32, lr=0.1, {args.runtime} runtime, {args.rounds} rounds",
        "rss_target_mb": RSS_TARGET_MB,
        "points": points,
        "curve_s_per_round": {
            alg: {p["clients_per_round"]: p["s_per_round"] for p in points if p["algorithm"] == alg} for alg in args.algorithms
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
