"""Reproduce, federated and reduced, seed 001's "AT + Tulip" table (Oberman: J^0, J^1, J^2, J^{2-Lip}).

MNIST, 100 IID clients, 10 per round, an MLP (one hidden layer of 100), 20 rounds of FedAvg; each
defence is a ``robustness.training`` objective (J^1: FGSM adversarial training, eps 0.1 l_inf;
J^2: l2 adversarial training by FGM, eps 1.0; J^{2-Lip}: ``tulip``, eps 1.0, lam 0.1; radii in
pixel units). Every run's summary gets the robust evaluation: PGD-20 at l2 eps 1.0 and l_inf eps
0.1, and the median minimal l2 / l_inf distance (10 bisection steps up to 4.0 / 0.4), on the first
500 test images. Nothing is tuned.

    python benchmarks/reproduce_robustness.py --out runs/repro-robustness [--seeds 0,1,2] [--rounds 20]

Writes results.jsonl (one line per run, with load average and threads) and table.md (mean +- std
over seeds) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from fedsim.experiment import run

DEFENCES = {
    "J0 (baseline)": None,
    "J1 (AT, FGSM)": {"kind": "adversarial", "attack": "fgsm", "eps": 0.1, "mix": 1.0},
    "J2 (AT, l2)": {"kind": "adversarial", "attack": "fgm", "eps": 1.0, "mix": 1.0},
    "J2-Lip (tulip)": {"kind": "tulip", "eps": 1.0, "lam": 0.1},
}
EVALUATION = {
    "attacks": [{"attack": "pgd", "norm": "l2", "eps": [1.0], "steps": 20}, {"attack": "pgd", "norm": "linf", "eps": [0.1], "steps": 20}],
    "distance_norms": ["l2", "linf"], "samples": 500, "bisection_steps": 10, "distance_max": {"l2": 4.0, "linf": 0.4},
}


def config(seed: int, rounds: int, defence: dict | None, out: Path) -> dict:
    cfg = {
        "seed": seed, "data": {"num_clients": 100, "partition": {"kind": "iid"}}, "model": {"kind": "mlp", "hidden": [100]},
        "algorithm": {"kind": "fedavg", "rounds": rounds, "clients_per_round": 10, "batch_size": 32, "lr": 0.05, "local_epochs": 1},
        "runtime": {"kind": "vectorized", "device": "cpu"}, "evaluation": {"every": rounds},
        "output": {"dir": str(out / "runs"), "plot": False}, "robustness": {"evaluation": EVALUATION},
    }
    if defence:
        cfg["robustness"]["training"] = defence
    return cfg


def table(rows: list[dict]) -> str:
    def cell(rs: list[dict], key: str, scale: float = 1.0, offset: float = 0.0, fmt: str = "{:.3f}") -> str:
        v = [offset + scale * r[key] for r in rs]
        return fmt.format(statistics.mean(v)) + (" ± " + fmt.format(statistics.stdev(v)) if len(v) > 1 else "")

    lines = ["| defense | seeds | clean acc | l2 median dist | % err at l2 eps = 1.0 | l_inf median dist | % err at l_inf eps = 0.1 |",
             "|---|---|---|---|---|---|---|"]
    for name in DEFENCES:
        rs = [r for r in rows if r["defense"] == name]
        if rs:
            lines.append(f"| {name} | {len(rs)} | {cell(rs, 'final_accuracy')} | {cell(rs, 'median_distance/l2')} | "
                         f"{cell(rs, 'robust_acc/pgd_l2/1', -100, 100, '{:.1f}')} | {cell(rs, 'median_distance/linf', fmt='{:.4f}')} | "
                         f"{cell(rs, 'robust_acc/pgd_linf/0.1', -100, 100, '{:.1f}')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/repro-robustness"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, defence in DEFENCES.items():
            start = time.perf_counter()
            result = run(config(seed, args.rounds, defence, args.out))
            row = {"seed": seed, "defense": name, "wall_s": time.perf_counter() - start, "final_accuracy": result.final_accuracy,
                   **result.summary["robustness"], "load": os.getloadavg(), "threads": torch.get_num_threads()}
            rows.append(row)
            with (args.out / "results.jsonl").open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    (args.out / "table.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
