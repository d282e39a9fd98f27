"""FedAvg rounds on a CUDA GPU: the CNN and ResNet-8 at 100 and 1,000 clients per round.

One short prepared script (about 2-4 minutes on one GPU; it stops starting new points after
``--budget-s``). It needs nothing but the repository and the wheels the README installs: the data
are synthetic tensors of MNIST's (1x28x28) and CIFAR-10's (3x32x32) shapes, 50 samples per
client, so no data set is downloaded. For every (model, clients per round) point it measures

* ``vectorized`` (``runtime.conv`` vmap and unfold) and ``serial`` fedsim runtimes: one FedAvg
  round (local epoch, batch 32, lr 0.05, then the size-weighted mean), after one warm-up round;
* ``single_model``: one ``nn.Module`` trained with ``torch.optim.SGD`` over the same number of
  samples in minibatches of 32 (the throughput a GPU gives one model);

and prints JSON with samples per second, the ratio to the single-model loop (target: fedsim's
fastest within 2x, i.e. ratio >= 0.5), peak GPU memory, and the largest cohort that fits in one
batched pass (``max_clients`` is halved on out-of-memory until a pass fits).

    PYTHONPATH=. python benchmarks/gpu.py [--out gpu.json] [--budget-s 240] [--dry-run-cpu 4]

Without CUDA it prints ``{"skipped": ...}`` and exits 0 (CI runs it that way).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from fedsim.client import ClientTask, LocalSGD
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes import SerialRuntime, VectorizedRuntime

PER_CLIENT, BATCH, LR, SEED = 50, 32, 0.05, 0
MODELS = {"cnn": ((1, 28, 28), {}), "resnet8": ((3, 32, 32), {"depth": 8})}
COHORTS = (100, 1000)
TARGET_RATIO_MIN = 0.5  # fedsim samples/s over the single-model loop's: within 2x


def synthetic(shape: tuple[int, ...], clients: int) -> FederatedData:
    gen = torch.Generator().manual_seed(SEED)
    n = clients * PER_CLIENT
    x = torch.randn(n, *shape, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    indices = list(torch.arange(n).view(clients, PER_CLIENT).unbind(0))
    return FederatedData(x, y, indices, x[:1000].clone(), y[:1000].clone(), input_shape=shape, num_classes=10, name="synthetic")


def module(kind: str) -> torch.nn.Module:
    shape, extra = MODELS[kind]
    return build_model("resnet" if kind.startswith("resnet") else kind, seed=SEED, input_shape=shape, **extra)


DEVICE = torch.device("cuda")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_mb() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if DEVICE.type == "cuda" else None


def timed(fn) -> float:
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - start


def fedavg_round(runtime, task: ClientTask, w: torch.Tensor, cohort: list[int], rnd: int) -> torch.Tensor:
    result = runtime.run_cohort(task, w, cohort, rnd)
    weights = result.num_samples.to(result.updates) / result.num_samples.sum()
    return w + weights @ result.updates


def fedsim_point(kind: str, data: FederatedData, cohort: list[int], runtime_kind: str, conv: str) -> dict[str, Any]:
    device = DEVICE
    model = FunctionalModel(module(kind))
    task = ClientTask(LocalSGD(lr=LR, batch_size=BATCH))
    w = model.initial_params().to(device)
    max_clients = len(cohort)
    while True:
        try:
            if runtime_kind == "serial":
                runtime = SerialRuntime(model, data, seed=SEED, device=device)
            else:
                runtime = VectorizedRuntime(model, data, seed=SEED, device=device, max_clients=max_clients, conv=conv)
            fedavg_round(runtime, task, w, cohort, 0)  # warm-up: cuDNN algorithm choice, allocator
            _reset_peak()
            seconds = timed(lambda: fedavg_round(runtime, task, w, cohort, 1))
            break
        except torch.cuda.OutOfMemoryError:
            runtime = None
            torch.cuda.empty_cache()  # only CUDA raises OutOfMemoryError
            if runtime_kind == "serial" or max_clients == 1:
                raise
            max_clients //= 2
    samples = len(cohort) * PER_CLIENT
    return {
        "runtime": runtime_kind if runtime_kind == "serial" else f"vectorized_{conv}",
        "round_s": round(seconds, 4),
        "samples_per_s": round(samples / seconds, 1),
        "peak_gpu_mb": _peak_mb(),
        "largest_batched_cohort": max_clients if runtime_kind != "serial" else 1,
    }


def single_model_point(kind: str, data: FederatedData, samples: int) -> dict[str, Any]:
    net = module(kind).to(DEVICE)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = data.x_train[:samples].to(DEVICE), data.y_train[:samples].to(DEVICE)

    def epoch() -> None:
        for idx in torch.randperm(samples, device=DEVICE).split(BATCH):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()

    epoch()
    _reset_peak()
    seconds = timed(epoch)
    return {"runtime": "single_model", "round_s": round(seconds, 4), "samples_per_s": round(samples / seconds, 1),
            "peak_gpu_mb": _peak_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--budget-s", type=float, default=240.0, help="start no new point after this many seconds")
    parser.add_argument("--dry-run-cpu", type=int, metavar="CLIENTS",
                        help="exercise the script on the CPU with this many clients per round (no GPU figures)")
    args = parser.parse_args()
    global DEVICE
    cohorts: tuple[int, ...] = COHORTS
    if args.dry_run_cpu:
        DEVICE, cohorts = torch.device("cpu"), (args.dry_run_cpu,)
    elif not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu", "skipped": "CUDA is not available on this machine"}))
        return
    begin = time.perf_counter()
    cuda = DEVICE.type == "cuda"
    report: dict[str, Any] = {
        "benchmark": "gpu",
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (dry run)",
        "gpu_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": os.getloadavg()[0],
        "workload": f"synthetic data, {PER_CLIENT} samples per client, 1 local epoch, batch {BATCH}, lr {LR}",
        "target": f"fastest fedsim samples_per_s / single_model >= {TARGET_RATIO_MIN}",
        "points": [],
        "not_run": [],
    }
    for kind in MODELS:
        for clients in cohorts:
            if time.perf_counter() - begin > args.budget_s:
                report["not_run"].append({"model": kind, "clients_per_round": clients, "why": "time budget"})
                continue
            data = synthetic(MODELS[kind][0], clients)
            cohort = list(range(clients))
            single = single_model_point(kind, data, clients * PER_CLIENT)
            rows = [single]
            for runtime_kind, conv in (("vectorized", "vmap"), ("vectorized", "unfold"), ("serial", "auto")):
                try:
                    rows.append(fedsim_point(kind, data, cohort, runtime_kind, conv))
                except torch.cuda.OutOfMemoryError as err:
                    rows.append({"runtime": runtime_kind, "error": f"out of memory: {str(err).splitlines()[0]}"})
                print(json.dumps({"model": kind, "clients_per_round": clients, **rows[-1]}), file=sys.stderr, flush=True)
            fedsim_rows = [r for r in rows[1:] if "samples_per_s" in r]
            for r in fedsim_rows:
                r["ratio_to_single_model"] = round(r["samples_per_s"] / single["samples_per_s"], 3)
            best = max(fedsim_rows, key=lambda r: r["samples_per_s"], default=None)
            report["points"].append({
                "model": kind, "clients_per_round": clients, "results": rows,
                "fastest_fedsim": best["runtime"] if best else None,
                "fastest_ratio_to_single_model": best["ratio_to_single_model"] if best else None,
                "target_met": bool(best and best["ratio_to_single_model"] >= TARGET_RATIO_MIN),
            })
            del data
            if cuda:
                torch.cuda.empty_cache()
    report["total_s"] = round(time.perf_counter() - begin, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
