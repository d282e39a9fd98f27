"""Serial against vectorized runtime, per model of the zoo, on one cohort's round.

Each model trains the same cohort (``--clients`` clients of ``--samples`` samples, batch 32, one
local epoch) on both runtimes, alternating serial and vectorized ``--repeats`` times so load on a
shared machine hits both alike; the ratio of median wall times (vectorized / serial; below 1 is
faster) is printed with the load average and torch's thread count. A model with convolutions or a
recurrence also runs the vectorized runtime in each ``runtime.conv`` mode (``auto`` is per-client on
CPU; ``vmap``: grouped convolutions or a batched time loop; ``unfold``: im2col + bmm). Inputs are random tensors of
the data sets' shapes (Fashion-MNIST 1x28x28, CIFAR 3x32x32, Shakespeare 80 characters): cost
does not depend on the values.

    python benchmarks/model_runtimes.py [--clients 10] [--samples 64] [--repeats 3]
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

from fedsim.client import ClientTask, LocalSGD
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes import SerialRuntime, VectorizedRuntime

CASES: dict[str, dict[str, Any]] = {
    "cnn": dict(input_shape=(1, 28, 28), input_kind="image"),
    "cnn_fedavg": dict(input_shape=(1, 28, 28), input_kind="image"),
    "resnet8": dict(input_shape=(3, 32, 32), input_kind="image", depth=8),
    "resnet20": dict(input_shape=(3, 32, 32), input_kind="image", depth=20),
    "char_lstm": dict(input_shape=(80,), input_kind="sequence", num_classes=80, vocab_size=80),
}


def federation(case: dict, clients: int, samples: int) -> FederatedData:
    gen = torch.Generator().manual_seed(0)
    n = clients * samples
    shape = case["input_shape"]
    classes = case.get("num_classes", 10)
    if case["input_kind"] == "sequence":
        x = torch.randint(0, 80, (n, shape[0]), generator=gen)
    else:
        x = torch.randn(n, torch.Size(shape).numel(), generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    return FederatedData(x, y, list(torch.arange(n).split(samples)), x[:1], y[:1], input_shape=shape, num_classes=classes,
                         kind=case["input_kind"], vocab_size=case.get("vocab_size"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = ClientTask(LocalSGD(lr=0.05, batch_size=32, epochs=1))
    cohort = list(range(args.clients))
    out = {"clients": args.clients, "samples": args.samples, "threads": torch.get_num_threads(), "loadavg_before": os.getloadavg()}
    for name in args.models:
        case = dict(CASES[name])
        kind = "resnet" if name.startswith("resnet") else name
        model = FunctionalModel(build_model(kind, seed=0, **case))
        data = federation(case, args.clients, args.samples)
        runtimes = {"serial": SerialRuntime(model, data, seed=0), "vectorized": VectorizedRuntime(model, data, seed=0)}
        if model.has_convolutions or model.has_recurrence:
            modes = ("vmap", "unfold") if model.has_convolutions else ("vmap",)
            runtimes.update({f"vectorized_{m}": VectorizedRuntime(model, data, seed=0, conv=m) for m in modes})
        for rt in runtimes.values():  # warm-up (lazy initialisation, allocator)
            rt.run_cohort(task, model.initial_params(), cohort, 0)
        times: dict[str, list[float]] = {k: [] for k in runtimes}
        for r in range(args.repeats):
            for key, rt in runtimes.items():
                t = time.perf_counter()
                rt.run_cohort(task, model.initial_params(), cohort, r + 1)
                times[key].append(time.perf_counter() - t)
        s = statistics.median(times["serial"])
        out[name] = {"serial_s": round(s, 4)}
        for key in runtimes:
            if key != "serial":
                v = statistics.median(times[key])
                out[name][f"{key}_s"] = round(v, 4)
                out[name][f"ratio_{key}_over_serial"] = round(v / s, 3)
        print(json.dumps({name: out[name]}), flush=True)
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
