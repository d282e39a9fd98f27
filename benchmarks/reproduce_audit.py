"""Can the privacy audit detect leakage? A non-private run (z = 0) against DP runs of the same config.

Trains ``configs/dp_fed_ls/mnist_logistic.yaml`` (K = 2000, 20 clients a round without
replacement, 30 rounds, G = 0.3) once without noise and at calibrated epsilons, then runs
``fedsim privacy audit`` on each run folder with several canary counts. The one-run canary
bound (Steinke, Nasr, Jagielski 2023) must be clearly above 0 on the non-private run and below
the accounted epsilon on the DP runs; membership inference (loss threshold) is reported beside it.

    python benchmarks/reproduce_audit.py --results benchmarks/results/privacy_audit.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from fedsim.experiment import run
from fedsim.privacy.run_audit import audit_run

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "dp_fed_ls" / "mnist_logistic.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce_audit"))
    parser.add_argument("--epsilons", type=float, nargs="+", default=[2.0, 5.0])
    parser.add_argument("--canaries", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    started, load0 = time.time(), os.getloadavg()
    rows = []
    settings = [("z=0 (non-private)", ["privacy.target_epsilon=null", "privacy.noise_multiplier=0"])]
    settings += [(f"target eps={e:g}", [f"privacy.target_epsilon={e}"]) for e in args.epsilons]
    for label, overrides in settings:
        res = run(CONFIG, [*overrides, f"runtime.device={args.device}", "output.plot=false"],
                  out=args.out / label.split(" ")[0].replace("=", ""))
        for m in args.canaries:
            rep = audit_run(res.run_dir, canaries=m)
            acc, low, mi = rep["accounted"], rep["empirical_lower_bound"], rep["membership_inference"]
            row = {"run": label, "test_accuracy": res.final_accuracy,
                   "noise_multiplier": res.summary["privacy"]["noise_multiplier"],
                   "epsilon_accounted": None if math.isinf(acc["epsilon_ledger"]) else acc["epsilon_ledger"],
                   "epsilon_recomputed": None if math.isinf(acc["epsilon_recomputed"]) else acc["epsilon_recomputed"],
                   "delta": acc["delta"], "analysis": acc["analysis"], "canaries": m,
                   "epsilon_lower_bound": low["epsilon"], "correct": low["correct"], "guesses": low["guesses"],
                   "confidence": low["confidence"], "mi_auc": mi["auc"], "mi_accuracy": mi["accuracy"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps({
            "config": str(CONFIG.relative_to(REPO)), "rows": rows,
            "conditions": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "loadavg_start": load0,
                           "loadavg_end": os.getloadavg(), "wall_s": time.time() - started},
        }, indent=2))


if __name__ == "__main__":
    main()
