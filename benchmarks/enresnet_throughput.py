"""Training throughput (samples/s) of ResNet-8 against EnResNet-8 on Fashion-MNIST-shaped inputs.

Each case runs local SGD (batch 64, the noise draw included) on one client of ``--samples``
random 1x28x28 images, in interleaved repeats so machine load hits every case alike; the median
samples/s is printed per case with the load average and torch's thread count. Cost does not
depend on the input values.

    python benchmarks/enresnet_throughput.py [--samples 512] [--repeats 3] [--widths 16,4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from fedsim.client import ClientContext, ClientTask, LocalSGD, train_client
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model


def cases(widths: list[int]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for w in widths:
        out[f"resnet8_w{w}"] = dict(kind="resnet", width=w)
        out[f"en1resnet8_w{w}"] = dict(kind="enresnet", width=w, ensemble=1, noise_std=0.1)
        out[f"en5resnet8_w{w}"] = dict(kind="enresnet", width=w, ensemble=5, noise_std=0.1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--widths", default="16,4")
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(args.samples, 784, generator=gen), torch.randint(0, 10, (args.samples,), generator=gen)
    task = ClientTask(LocalSGD(lr=0.05, batch_size=64, epochs=1))
    models = {name: FunctionalModel(build_model(seed=0, input_shape=(1, 28, 28), depth=8, **kw)) for name, kw in cases([int(w) for w in args.widths.split(",")]).items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for r in range(args.repeats + 1):  # the first pass warms up
        for name, model in models.items():
            t0 = time.perf_counter()
            train_client(task, model, model.initial_params(), x, y, ClientContext(0, r, 0))
            if r:
                times[name].append(time.perf_counter() - t0)
    rows = {name: {"samples_per_s": round(args.samples / statistics.median(t), 1), "params": models[name].dim,
                   "noise_per_sample": models[name].noise_numel} for name, t in times.items()}
    print(json.dumps({"rows": rows, "loadavg": os.getloadavg(), "threads": torch.get_num_threads(), "samples": args.samples}, indent=1))


if __name__ == "__main__":
    main()
