"""FedAvg on MNIST: every fedsim runtime, a hand-written serial torch loop and Flower's simulation.

The federation (issue 8): 100 IID clients, all of them every round, 3 rounds, 1 local epoch,
batch 32, client lr 0.1, on (a) logistic regression and (b) the LeNet-style CNN. Every contender
starts from the same initial weights and ends with a test-set evaluation. Wall time runs from
MNIST in memory to the final accuracy and includes each engine's own start-up (Ray and its actors
for fedsim's ray runtime and for Flower), because a user pays it. Contenders alternate across
repeats so that load on a shared machine hits all alike; medians are reported with the ratios
``hand_loop / fastest fedsim`` and ``flower / fastest fedsim``. For fedsim's runtimes the wall time is
also split into start-up (data, model and runtime: for Ray, starting its instance and the actors
with the training set loaded, itemised under ``ray_startup``), the round loop (``rounds_s``: the
3 rounds and the final evaluation) and closing the runtime (``close_s``: Ray's shutdown); ``ratio_ray_over_vectorized_rounds`` compares round loops (the
work a longer run repeats), ``ratio_ray_over_vectorized`` whole runs.

    PYTHONPATH=. FEDSIM_DATA=../shared/data python benchmarks/fedavg_mnist.py \
        [--models logistic cnn] [--repeats 1] [--threads N] [--skip-flower] [--only fedsim_vectorized fedsim_ray]
        [--out results.json]

Flower runs through ``flwr.simulation.run_simulation`` (deprecated in flwr 1.42 but its only
in-process simulation entry point) with the Message-API ``FedAvg`` strategy and one CPU per
virtual client, as in Flower's quickstart.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fedsim.data.federated import build_federated_data
from fedsim.experiment import Experiment, resolve_config
from fedsim.models.zoo import build_model
from fedsim.output import RunFolder
from fedsim.seeding import torch_generator

NUM_CLIENTS, ROUNDS, EPOCHS, BATCH, LR, SEED = 100, 3, 1, 32, 0.1, 0
TARGETS = {"vs_hand_loop_min": 5.0, "vs_flower_min": 50.0, "accuracy_gap_max_points": 0.5,
           "vectorized_over_bound_max": 1.5, "ray_over_vectorized_max": 2.0}


def fedsim_config(model: str, runtime: dict[str, Any], out: str) -> dict[str, Any]:
    return {
        "seed": SEED,
        "data": {"num_clients": NUM_CLIENTS, "partition": {"kind": "iid"}},
        "model": {"kind": model},
        "algorithm": {
            "kind": "fedavg", "rounds": ROUNDS, "clients_per_round": NUM_CLIENTS,
            "local_epochs": EPOCHS, "batch_size": BATCH, "lr": LR,
        },
        "runtime": runtime,
        "evaluation": {"every": ROUNDS},
        "output": {"dir": out, "plot": False},
    }


def run_fedsim(model: str, runtime: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """Wall time, final accuracy and the split of the wall time: start-up and the round loop."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_config(fedsim_config(model, runtime, tmp))
        start = time.perf_counter()
        experiment = Experiment(cfg)
        built = time.perf_counter()
        try:
            result = experiment.run(RunFolder.create(Path(tmp) / "run"))
        finally:
            closing = time.perf_counter()
            experiment.runtime.close()
        end = time.perf_counter()
        wall = end - start
        rounds = result.history[-1]["wall_s"]  # the round loop, final evaluation included
        split: dict[str, Any] = {"startup_s": built - start, "rounds_s": rounds, "close_s": end - closing}
        if hasattr(experiment.runtime, "startup"):  # the Ray runtime's own start, itemised
            split["ray_startup"] = dict(experiment.runtime.startup)
            split["ray_actors"] = experiment.runtime.num_actors
            split["ray_actor_threads"] = experiment.runtime.actor_threads
        return wall, result.final_accuracy, split


def train_by_hand(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rnd: int, client: int) -> torch.nn.Module:
    """One client's local epochs with torch.optim.SGD, reshuffled from the client's fedsim stream."""
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    gen = torch_generator(SEED, "batches", rnd, client)
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(y), generator=gen).split(BATCH):
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net


def run_hand_loop(model: str) -> tuple[float, float]:
    """FedAvg as one writes it by hand: nn.Module per client, torch.optim.SGD, state_dict averaging."""
    start = time.perf_counter()
    data = build_federated_data(dataset="mnist", num_clients=NUM_CLIENTS, partition="iid", seed=SEED)
    global_model = build_model(model, seed=SEED)
    for rnd in range(ROUNDS):
        states, sizes = [], []
        for k in range(NUM_CLIENTS):
            x, y = data.client_data(k)
            states.append(train_by_hand(copy.deepcopy(global_model), x, y, rnd, k).state_dict())
            sizes.append(len(y))
        total = sum(sizes)
        global_model.load_state_dict({n: sum(s[n] * (m / total) for s, m in zip(states, sizes)) for n in states[0]})
    with torch.no_grad():
        accuracy = (global_model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    return time.perf_counter() - start, accuracy


def run_bound(model: str) -> tuple[float, float]:
    """The hardware bound for logistic regression: the same FedAvg arithmetic with nothing but tensors.

    Every round gathers all clients' minibatches of a step with one ``index_select`` into a
    reused ``(C, B, 784)`` buffer, takes the closed-form softmax-regression gradient with one
    ``baddbmm`` and one ``bmm``, steps in place, and averages by client size. The minibatches are
    fedsim's (its batched schedule), so the final model is the same up to float rounding.
    """
    if model != "logistic":
        raise ValueError("the closed-form bound exists for the logistic model only")
    from fedsim.client import ClientTask, LocalSGD
    from fedsim.models.functional import FunctionalModel
    from fedsim.runtimes.vectorized import cohort_schedule

    start = time.perf_counter()
    data = build_federated_data(dataset="mnist", num_clients=NUM_CLIENTS, partition="iid", seed=SEED)
    w = FunctionalModel(build_model(model, seed=SEED)).initial_params()
    task = ClientTask(LocalSGD(lr=LR, batch_size=BATCH, epochs=EPOCHS))
    clients = list(range(NUM_CLIENTS))
    sizes = data.client_sizes().to(torch.float32)
    x, y = data.x_train.view(len(data.x_train), -1), data.y_train
    buf = torch.empty(NUM_CLIENTS * BATCH, x.shape[1])
    for rnd in range(ROUNDS):
        sched = cohort_schedule(task, data, clients, SEED, rnd)
        weight = sched.valid.to(torch.float32)
        scale = weight / weight.sum(2, keepdim=True).clamp_min(1.0)  # (C, S, B): 1/|batch| on real samples
        active = (sched.steps[:, None] > torch.arange(sched.index.shape[1])).to(torch.float32)
        ws = w[:7840].view(10, 784).expand(NUM_CLIENTS, 10, 784).clone()
        bs = w[7840:].expand(NUM_CLIENTS, 10).clone()
        for s in range(sched.index.shape[1]):
            rows = sched.index[:, s].reshape(-1)
            xb = torch.index_select(x, 0, rows, out=buf).view(NUM_CLIENTS, BATCH, -1)
            p = torch.softmax(torch.baddbmm(bs[:, None, :], xb, ws.transpose(1, 2)), dim=-1)
            p.scatter_add_(2, y[rows].view(NUM_CLIENTS, BATCH, 1), torch.full((NUM_CLIENTS, BATCH, 1), -1.0))
            p *= (scale[:, s] * active[:, s, None])[..., None]
            ws.baddbmm_(p.transpose(1, 2), xb, alpha=-LR)
            bs.sub_(p.sum(1), alpha=LR)
        mix = sizes / sizes.sum()
        w = torch.cat([torch.einsum("c,cij->ij", mix, ws).reshape(-1), mix @ bs])
    accuracy = (torch.nn.functional.linear(data.x_test.view(len(data.x_test), -1), w[:7840].view(10, 784), w[7840:]).argmax(1) == data.y_test).float().mean().item()
    return time.perf_counter() - start, accuracy


# --------------------------------------------------------------------------- Flower


@functools.lru_cache(maxsize=1)
def _federation():
    """The IID split, built once per process (Flower runs its clients in Ray worker processes)."""
    return build_federated_data(dataset="mnist", num_clients=NUM_CLIENTS, partition="iid", seed=SEED)


def _flower_apps(model: str, outcome: dict[str, float]):
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    client_app = ClientApp()
    server_app = ServerApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        data = _federation()
        torch.set_num_threads(1)
        pid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"]) - 1
        net = build_model(model, seed=SEED)
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        x, y = data.client_data(pid)
        train_by_hand(net, x, y, rnd, pid)
        content = RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": MetricRecord({"num-examples": len(y)})})
        return Message(content=content, reply_to=msg)

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        data = _federation()
        net = build_model(model, seed=SEED)
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=NUM_CLIENTS, min_available_nodes=NUM_CLIENTS)
        result = strategy.start(grid=grid, initial_arrays=ArrayRecord(net.state_dict()), num_rounds=ROUNDS, train_config=ConfigRecord({"lr": LR}))
        net.load_state_dict(result.arrays.to_torch_state_dict())
        with torch.no_grad():
            outcome["accuracy"] = (net(data.x_test).argmax(1) == data.y_test).float().mean().item()

    return server_app, client_app


def run_flower(model: str) -> tuple[float, float]:
    from flwr.simulation import run_simulation

    # Ray workers must import fedsim, and Flower's ray.init() must not attach to another session's cluster.
    here = Path(__file__).resolve().parent
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(here.parent), str(here), os.environ.get("PYTHONPATH")) if p)
    os.environ["RAY_ADDRESS"] = "local"
    # The apps are pickled into Ray workers by reference, so take them from this file imported as the
    # top-level module ``fedavg_mnist`` (importable there through PYTHONPATH), not from __main__.
    sys.path.insert(0, str(here))
    bench = importlib.import_module("fedavg_mnist")
    outcome: dict[str, float] = {}
    start = time.perf_counter()
    server_app, client_app = bench._flower_apps(model, outcome)
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=NUM_CLIENTS,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"include_dashboard": False}},
    )
    elapsed = time.perf_counter() - start
    if "accuracy" not in outcome:
        raise RuntimeError("Flower's simulation ended without a final model (see its log above)")
    return elapsed, outcome["accuracy"]


# --------------------------------------------------------------------------- driver

FEDSIM_RUNTIMES = {
    "fedsim_serial": {"kind": "serial", "device": "cpu"},
    "fedsim_vectorized": {"kind": "vectorized", "device": "cpu"},
    "fedsim_ray": {"kind": "ray", "device": "cpu"},
}


def with_cpu_time(fn):
    """``fn()``'s (wall, accuracy[, split]) plus this process's CPU seconds (Ray workers' CPU is not
    counted) and the 1-minute load average at the end."""
    start = time.process_time()
    wall, accuracy, *split = fn()
    return wall, accuracy, time.process_time() - start, (split[0] if split else {}) | {"load_1m": os.getloadavg()[0]}


def _median_split(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the start-up / round-loop split over repeats (nested dicts key by key)."""
    out: dict[str, Any] = {}
    for key, value in splits[0].items():
        if isinstance(value, dict):
            out[key] = _median_split([s[key] for s in splits])
        elif isinstance(value, float):
            out[key] = round(statistics.median(s[key] for s in splits), 3)
        else:
            out[key] = value
    return out


def bench_model(model: str, repeats: int, flower: bool, only: list[str] | None = None) -> dict[str, Any]:
    contenders = {name: (lambda rt=rt: with_cpu_time(lambda: run_fedsim(model, rt))) for name, rt in FEDSIM_RUNTIMES.items()}
    contenders["hand_loop"] = lambda: with_cpu_time(lambda: run_hand_loop(model))
    if model == "logistic":
        contenders["bound_gather_bmm"] = lambda: with_cpu_time(lambda: run_bound(model))
    if only:
        contenders = {name: fn for name, fn in contenders.items() if name in only}
        flower = flower and "flower_simulation" in only
    runs: dict[str, list[tuple[float, float, float, dict[str, Any]]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            runs[name].append(fn())
            print(json.dumps({"model": model, "contender": name, "wall_s": runs[name][-1][0], "accuracy": runs[name][-1][1],
                              **runs[name][-1][3]}), file=sys.stderr)
    if flower:
        runs["flower_simulation"] = [with_cpu_time(lambda: run_flower(model))]  # one run: it takes tens of seconds
        print(json.dumps({"model": model, "contender": "flower_simulation", "wall_s": runs["flower_simulation"][0][0]}), file=sys.stderr)
    out: dict[str, Any] = {
        name: {
            "wall_s": round(statistics.median(t for t, _, _, _ in r), 3),
            "process_cpu_s": round(statistics.median(c for _, _, c, _ in r), 3),
            **_median_split([split for _, _, _, split in r]),
            "accuracy": r[-1][1],
            "runs": len(r),
        }
        for name, r in runs.items()
    }
    if only:  # a partial comparison: the two runtimes' ratios only
        if {"fedsim_ray", "fedsim_vectorized"} <= out.keys():
            _ray_ratios(out)
        return out
    fastest = min(FEDSIM_RUNTIMES, key=lambda n: out[n]["wall_s"])
    out["fastest_fedsim"] = fastest
    best = out[fastest]
    out["ratio_hand_loop_over_fastest"] = round(out["hand_loop"]["wall_s"] / best["wall_s"], 2)
    out["ratio_vectorized_over_serial_speed"] = round(out["fedsim_serial"]["wall_s"] / out["fedsim_vectorized"]["wall_s"], 2)
    if "bound_gather_bmm" in out:
        out["ratio_vectorized_over_bound"] = round(out["fedsim_vectorized"]["wall_s"] / out["bound_gather_bmm"]["wall_s"], 2)
        out["cpu_ratio_vectorized_over_bound"] = round(out["fedsim_vectorized"]["process_cpu_s"] / out["bound_gather_bmm"]["process_cpu_s"], 2)
    _ray_ratios(out)
    # CPU seconds are less sensitive than wall time to other load on a shared machine (in-process contenders only).
    out["cpu_ratio_hand_loop_over_vectorized"] = round(out["hand_loop"]["process_cpu_s"] / out["fedsim_vectorized"]["process_cpu_s"], 2)
    if flower:
        out["ratio_flower_over_fastest"] = round(out["flower_simulation"]["wall_s"] / best["wall_s"], 2)
    others = [out[n]["accuracy"] for n in ("hand_loop", "flower_simulation") if n in out]
    out["max_accuracy_gap_points"] = round(100 * max(abs(best["accuracy"] - a) for a in others), 3)
    return out


def _ray_ratios(out: dict[str, Any]) -> None:
    """Ray against vectorized: the round loops (the target's ratio) and whole runs (start-up included)."""
    ray, vec = out["fedsim_ray"], out["fedsim_vectorized"]
    out["ratio_ray_over_vectorized_rounds"] = round(ray["rounds_s"] / vec["rounds_s"], 2)
    out["ratio_ray_over_vectorized"] = round(ray["wall_s"] / vec["wall_s"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["logistic", "cnn"], choices=["logistic", "mlp", "cnn"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-flower", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads in this process (1 avoids OpenMP spinning on a loaded machine)")
    parser.add_argument("--only", nargs="+", help="run only these contenders (e.g. fedsim_vectorized fedsim_ray)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    build_federated_data(dataset="mnist", num_clients=NUM_CLIENTS, partition="iid", seed=SEED)  # parse the IDX files once
    report: dict[str, Any] = {
        "workload": f"FedAvg MNIST, {NUM_CLIENTS} IID clients, all per round, {ROUNDS} rounds, E={EPOCHS}, B={BATCH}, lr={LR}",
        "machine": {
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "load_average_1m_at_start": os.getloadavg()[0],
        },
        "contenders": "fedsim_* and hand_loop (and bound_gather_bmm on logistic) alternate within every repeat; medians",
        "targets_on_logistic": TARGETS,
    }
    for model in args.models:
        report[model] = bench_model(model, args.repeats, not args.skip_flower, args.only)
    report["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
