"""Reproduce, federated and reduced, the robustness tables of seeds 001 and 000, and the cost of robust training.

Three subcommands, one federation (100 IID clients of Fashion-MNIST or MNIST, FedAvg, 10 clients per
round, 1 local epoch, batch 32, lr 0.05, vectorized runtime); radii are in pixel units (fractions
of the data range). Nothing is tuned: the hyperparameters below were fixed before the first run.

``seed001``: Oberman's "AT + Tulip" table (seed 001): J^0 (baseline), J^1 (FGSM adversarial
training, l_inf eps 0.1), J^2 (l2 adversarial training by FGM, eps 1.0) and J^{2-Lip} (``tulip``,
eps 1.0, lam 0.1), each a ``robustness.training`` objective. Each run's summary gets the robust
evaluation on the first ``--samples`` test images: PGD-20 at l2 eps 0.5 / 1.0 and l_inf eps
0.05 / 0.1, and the median minimal l2 / l_inf distance (PGD-20 + 10 bisection steps up to 4.0 /
0.4).

``enresnet``: deck 000's EnResNet table (Wang et al. 2019): a plain ResNet and En1 / En5 ResNets
(Gaussian noise in each residual block, ``n`` jointly trained nets averaged), without and with
adversarial training (FGSM, l_inf eps 0.1, mixed 50/50 with clean samples); natural accuracy and
robust accuracy under FGSM (eps 0.1), IFGSM^20 (eps 0.1) and C&W (l2, 4 constants x 30 Adam steps;
a sample counts as broken when C&W finds an adversarial example within l2 eps 1.0).

``cost``: seconds per round of each training objective relative to plain training, measured side
by side in one process (rounds interleaved, the minimum and median over ``--repeats``).

    python benchmarks/reproduce_robustness.py seed001 --dataset fashion_mnist --model cnn --seeds 0,1,2 --rounds 30 --out runs/repro-seed001
    python benchmarks/reproduce_robustness.py enresnet --rounds 10 --out runs/repro-enresnet
    python benchmarks/reproduce_robustness.py cost --dataset fashion_mnist --model cnn --repeats 3 --save benchmarks/results/robust_cost_cnn.json
    python benchmarks/reproduce_robustness.py table runs/repro-seed001 --save benchmarks/results/robust_seed001_fashion_cnn.json

``seed001`` / ``enresnet`` append one JSON line per run (with load average and threads) to
``--out``/results.jsonl, so several processes (split by ``--seeds`` or ``--only``) can share one
folder; ``table`` turns such folders into the markdown table (mean +- std over seeds) and, with
``--save``, a JSON file of every row plus the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from fedsim.experiment import Experiment, resolve_config, run

DEFENCES: dict[str, dict[str, Any] | None] = {
    "J0 (baseline)": None,
    "J1 (AT, FGSM)": {"kind": "adversarial", "attack": "fgsm", "eps": 0.1, "mix": 1.0},
    "J2 (AT, l2)": {"kind": "adversarial", "attack": "fgm", "eps": 1.0, "mix": 1.0},
    "J2-Lip (tulip)": {"kind": "tulip", "eps": 1.0, "lam": 0.1},
}
SEED001_EVALUATION = {
    "attacks": [{"attack": "pgd", "norm": "l2", "eps": [0.5, 1.0], "steps": 20},
                {"attack": "pgd", "norm": "linf", "eps": [0.05, 0.1], "steps": 20}],
    "distance_norms": ["l2", "linf"], "bisection_steps": 10, "distance_max": {"l2": 4.0, "linf": 0.4},
}
# Deck 000's models are PGD-trained; on 2 shared CPU cores FGSM training mixed 50/50 with clean
# samples (Goodfellow et al. 2015) is what fits (about 3x a plain round, PGD-k about k + 2x).
ENRESNET_AT = {"kind": "adversarial", "attack": "fgsm", "eps": 0.1, "mix": 0.5}
# C&W reduced from the paper's 9 constants x 1000 Adam steps: 4 constants from 0.1 (0.1, 1, 10, then
# bisection), 30 steps of lr 0.05 each.
ENRESNET_EVALUATION = {
    "attacks": [{"attack": "fgsm", "eps": [0.1]}, {"attack": "ifgsm", "eps": [0.1], "steps": 20},
                {"attack": "cw", "eps": [1.0], "steps": 30, "binary_search_steps": 4, "initial_const": 0.1, "lr": 0.05}],
    "distance_norms": [],
}
COST_OBJECTIVES: dict[str, dict[str, Any] | None] = {
    "plain": None,
    "FGSM AT": {"kind": "adversarial", "attack": "fgsm", "eps": 0.1, "mix": 1.0},
    "l2 (FGM) AT": {"kind": "adversarial", "attack": "fgm", "eps": 1.0, "mix": 1.0},
    "PGD-10 AT": {"kind": "adversarial", "attack": "pgd", "norm": "linf", "eps": 0.1, "steps": 10, "mix": 1.0},
    "J2 (gradient_norm, double backprop)": {"kind": "gradient_norm", "eps": 1.0, "q": 2},
    "tulip (double backprop)": {"kind": "tulip", "eps": 1.0, "lam": 0.1},
}
MODELS: dict[str, dict[str, Any]] = {"cnn": {"kind": "cnn"}, "mlp": {"kind": "mlp", "hidden": [100]}}


def base_config(args: argparse.Namespace, seed: int, model: dict[str, Any], out: Path) -> dict[str, Any]:
    """The shared federation (see the module docstring); ``robustness`` is filled by the caller."""
    return {
        "seed": seed, "data": {"dataset": args.dataset, "num_clients": args.clients, "partition": {"kind": "iid"}}, "model": model,
        "algorithm": {"kind": "fedavg", "rounds": args.rounds, "clients_per_round": args.clients_per_round, "batch_size": 32,
                      "lr": args.lr, "local_epochs": 1},
        "runtime": {"kind": "vectorized", "device": "cpu"}, "evaluation": {"every": args.rounds},
        "output": {"dir": str(out / "runs"), "plot": False}, "robustness": {},
    }


def _record(out: Path, row: dict[str, Any]) -> None:
    with (out / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _run_one(cfg: dict[str, Any], out: Path, **labels: Any) -> None:
    start = time.perf_counter()
    result = run(cfg)
    rounds = [r["wall_s"] for r in result.history]
    _record(out, {**labels, "seed": cfg["seed"], "dataset": cfg["data"]["dataset"], "model": cfg["model"],
                  "rounds": cfg["algorithm"]["rounds"], "clients_per_round": cfg["algorithm"]["clients_per_round"],
                  "samples": cfg["robustness"]["evaluation"]["samples"], "final_accuracy": result.final_accuracy,
                  **result.summary["robustness"], "train_s": rounds[-1], "wall_s": time.perf_counter() - start,
                  "load": os.getloadavg(), "threads": torch.get_num_threads(), "run_dir": str(result.run_dir)})


def cmd_seed001(args: argparse.Namespace) -> None:
    only = set(args.only.split(",")) if args.only else None
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, defence in DEFENCES.items():
            if only and name.split()[0] not in only:
                continue
            cfg = base_config(args, seed, MODELS[args.model], args.out)
            cfg["robustness"] = {"evaluation": {**SEED001_EVALUATION, "samples": args.samples}}
            if defence:
                cfg["robustness"]["training"] = defence
            _run_one(cfg, args.out, table="seed001", defense=name)


def enresnet_variants(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Model sections of the EnResNet table: the plain ResNet and En1 / En5 of the same depth and width."""
    common = {"depth": args.depth, **({"width": args.width} if args.width else {})}
    noise = {"noise_std": args.noise_std} if args.noise_std is not None else {}
    return {
        f"ResNet{args.depth}": {"kind": "resnet", **common},
        f"En1ResNet{args.depth}": {"kind": "enresnet", "ensemble": 1, **noise, **common},
        f"En5ResNet{args.depth}": {"kind": "enresnet", "ensemble": 5, **noise, **common},
    }


def cmd_enresnet(args: argparse.Namespace) -> None:
    only = set(args.only.split(",")) if args.only else None
    for seed in (int(s) for s in args.seeds.split(",")):
        for at in (False, True):
            for name, model in enresnet_variants(args).items():
                label = name + (" (AT)" if at else "")
                if only and label not in only:
                    continue
                cfg = base_config(args, seed, model, args.out)
                cfg["robustness"] = {"evaluation": {**ENRESNET_EVALUATION, "samples": args.samples}}
                if at:
                    cfg["robustness"]["training"] = ENRESNET_AT
                _run_one(cfg, args.out, table="enresnet", defense=label)


def cmd_cost(args: argparse.Namespace) -> None:
    """Seconds per round of each objective, rounds interleaved so load drifts hit all alike."""
    experiments, states, times = {}, {}, {}
    for name, objective in COST_OBJECTIVES.items():
        cfg = base_config(args, 0, MODELS[args.model], args.out)
        cfg["robustness"] = {"training": objective} if objective else {}
        if not objective:
            del cfg["robustness"]
        experiments[name] = exp = Experiment(resolve_config(cfg))
        states[name], times[name] = exp.algorithm.init(exp.initial_params), []
    loads = [os.getloadavg()]
    for rnd in range(args.repeats + 1):  # round 0 warms up (allocator, first-call overheads) and is dropped
        for name, exp in experiments.items():
            start = time.perf_counter()
            exp.algorithm.round(states[name], rnd, exp.runtime)
            if rnd:
                times[name].append(time.perf_counter() - start)
        loads.append(os.getloadavg())
    plain = min(times["plain"])
    rows = [{"objective": name, "s_per_round_min": min(t), "s_per_round_median": statistics.median(t),
             "ratio_min": min(t) / plain, "ratio_median": statistics.median(t) / statistics.median(times["plain"])}
            for name, t in times.items()]
    report = {"dataset": args.dataset, "model": MODELS[args.model], "clients_per_round": args.clients_per_round, "batch_size": 32,
              "local_steps": -(-len(experiments["plain"].data.client_indices[0]) // 32),
              "repeats": args.repeats, "runtime": "vectorized (cpu)", "threads": torch.get_num_threads(),
              "load_1min": [l[0] for l in loads], "rows": rows}
    print(json.dumps(report, indent=1))
    if args.save:
        args.save.write_text(json.dumps(report, indent=1) + "\n")


def _cell(rs: list[dict[str, Any]], key: str, scale: float = 1.0, offset: float = 0.0, fmt: str = "{:.3f}") -> str:
    v = [offset + scale * r[key] for r in rs if key in r]
    if not v:
        return "-"
    return fmt.format(statistics.mean(v)) + (" ± " + fmt.format(statistics.stdev(v)) if len(v) > 1 else "")


def seed001_table(rows: list[dict[str, Any]]) -> str:
    err = {"scale": -100, "offset": 100, "fmt": "{:.1f}"}
    lines = ["| defense | seeds | clean acc | l2 median dist | % err l2 eps 0.5 | % err l2 eps 1.0 | l_inf median dist | "
             "% err l_inf eps 0.05 | % err l_inf eps 0.1 | train s/run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in DEFENCES:
        rs = [r for r in rows if r["defense"] == name]
        if rs:
            lines.append(f"| {name} | {len(rs)} | {_cell(rs, 'final_accuracy')} | {_cell(rs, 'median_distance/l2')} | "
                         f"{_cell(rs, 'robust_acc/pgd_l2/0.5', **err)} | {_cell(rs, 'robust_acc/pgd_l2/1', **err)} | "
                         f"{_cell(rs, 'median_distance/linf', fmt='{:.4f}')} | {_cell(rs, 'robust_acc/pgd_linf/0.05', **err)} | "
                         f"{_cell(rs, 'robust_acc/pgd_linf/0.1', **err)} | {_cell(rs, 'train_s', fmt='{:.0f}')} |")
    return "\n".join(lines) + "\n"


def enresnet_table(rows: list[dict[str, Any]]) -> str:
    pct = {"scale": 100, "fmt": "{:.1f}"}
    lines = ["| model | seeds | A_nat | A_rob FGSM eps 0.1 | A_rob IFGSM^20 eps 0.1 | A_rob C&W (l2 <= 1.0) | train s/run |",
             "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["defense"] for r in rows):
        rs = [r for r in rows if r["defense"] == name]
        lines.append(f"| {name} | {len(rs)} | {_cell(rs, 'final_accuracy', **pct)} | {_cell(rs, 'robust_acc/fgsm/0.1', **pct)} | "
                     f"{_cell(rs, 'robust_acc/ifgsm/0.1', **pct)} | {_cell(rs, 'robust_acc/cw/1', **pct)} | {_cell(rs, 'train_s', fmt='{:.0f}')} |")
    return "\n".join(lines) + "\n"


def cmd_table(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for d in args.dirs for line in (d / "results.jsonl").read_text().splitlines() if line.strip()]
    tables = {kind: render([r for r in rows if r["table"] == kind]) for kind, render in (("seed001", seed001_table), ("enresnet", enresnet_table))
              if any(r["table"] == kind for r in rows)}
    for kind, text in tables.items():
        print(text)
        (args.dirs[0] / f"table_{kind}.md").write_text(text)
    if args.save:
        args.save.write_text(json.dumps({"tables": tables, "rows": rows}, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, default_rounds in (("seed001", 30), ("enresnet", 10), ("cost", 1)):
        p = sub.add_parser(name)
        p.add_argument("--dataset", default="fashion_mnist", choices=["fashion_mnist", "mnist"])
        p.add_argument("--model", default="cnn", choices=sorted(MODELS), help="seed001 / cost (enresnet uses ResNets)")
        p.add_argument("--seeds", default="0,1,2")
        p.add_argument("--rounds", type=int, default=default_rounds)
        p.add_argument("--clients", type=int, default=100)
        p.add_argument("--clients-per-round", type=int, default=10)
        p.add_argument("--lr", type=float, default=0.05)
        p.add_argument("--samples", type=int, default=500, help="test points attacked")
        p.add_argument("--only", default="", help="comma list: seed001 J0,J1,J2,J2-Lip; enresnet the row labels")
        p.add_argument("--depth", type=int, default=8, help="enresnet: ResNet depth")
        p.add_argument("--width", type=int, default=0, help="enresnet: model.width if the model has it (0: its default)")
        p.add_argument("--noise-std", type=float, default=None, help="enresnet: model.noise_std (default: the model's)")
        p.add_argument("--repeats", type=int, default=3, help="cost: timed rounds per objective")
        p.add_argument("--save", type=Path, default=None, help="cost: JSON report")
        p.add_argument("--out", type=Path, default=Path(f"runs/repro-{name}"))
    t = sub.add_parser("table")
    t.add_argument("dirs", type=Path, nargs="+")
    t.add_argument("--save", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command != "table":
        args.out.mkdir(parents=True, exist_ok=True)
    {"seed001": cmd_seed001, "enresnet": cmd_enresnet, "cost": cmd_cost, "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()
