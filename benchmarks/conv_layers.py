"""One convolution layer's forward + backward for C clients: per client, grouped, grouped channels-last, unfold + bmm.

The layers are those of the zoo's convolutional models (LeNet ``cnn``, LEAF/FedAvg ``cnn_fedavg``,
``resnet``) at batch 32. Contenders compute the same per-client weight gradients (and the input
gradient, except for a first layer):

- ``per_client``: C separate ``F.conv2d`` graphs, as the serial runtime (and ``conv: per_client``) runs them;
- ``grouped``: one convolution with ``groups = C`` over the clients' channels stacked, what
  ``torch.func.vmap`` makes of a batched-weight convolution (``conv: vmap``);
- ``grouped_channels_last``: the same on a channels-last input;
- ``unfold_bmm``: im2col of every client's minibatch and one batched matmul (``conv: unfold``).

Medians of ``--repeats`` interleaved runs; the JSON carries each time in ms, each batched
contender's speed relative to ``per_client`` (above 1: faster), the load average and the threads.

    python benchmarks/conv_layers.py [--clients 20] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

BATCH = 32
LAYERS = {  # name: (in channels, out channels, kernel, padding, input height = width)
    "cnn.conv1 1->6 k5 28x28": (1, 6, 5, 2, 28),
    "cnn.conv2 6->16 k5 14x14": (6, 16, 5, 0, 14),
    "cnn_fedavg.conv1 1->32 k5 28x28": (1, 32, 5, 2, 28),
    "cnn_fedavg.conv2 32->64 k5 14x14": (32, 64, 5, 2, 14),
    "resnet.stage1 16->16 k3 32x32": (16, 16, 3, 1, 32),
    "resnet.stage3 64->64 k3 8x8": (64, 64, 3, 1, 8),
}


def contenders(clients: int, cin: int, cout: int, k: int, pad: int, size: int) -> dict[str, Callable[[], None]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(clients, BATCH, cin, size, size, generator=g)
    w = (0.1 * torch.randn(clients, cout, cin, k, k, generator=g)).requires_grad_(True)
    first = cin == 1  # a first layer needs no input gradient
    xg = x if first else x.clone().requires_grad_(True)

    def per_client() -> None:
        for c in range(clients):
            wc = w[c].detach().requires_grad_(True)
            xc = x[c] if first else x[c].clone().requires_grad_(True)
            torch.autograd.grad(F.conv2d(xc, wc, padding=pad).sum(), [wc] if first else [wc, xc])

    def grouped(channels_last: bool) -> None:
        xx = xg.transpose(0, 1).reshape(BATCH, clients * cin, size, size)
        if channels_last:
            xx = xx.contiguous(memory_format=torch.channels_last)
        out = F.conv2d(xx, w.reshape(clients * cout, cin, k, k), padding=pad, groups=clients)
        torch.autograd.grad(out.sum(), [w] if first else [w, xg])

    def unfold_bmm() -> None:
        cols = F.unfold(xg.reshape(clients * BATCH, cin, size, size), k, padding=pad)  # (C B, cin k k, L)
        cols = cols.view(clients, BATCH, cin * k * k, -1).permute(0, 2, 1, 3).reshape(clients, cin * k * k, -1)
        out = torch.bmm(w.reshape(clients, cout, -1), cols)
        torch.autograd.grad(out.sum(), [w] if first else [w, xg])

    return {"per_client": per_client, "grouped": lambda: grouped(False),
            "grouped_channels_last": lambda: grouped(True), "unfold_bmm": unfold_bmm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict = {"clients": args.clients, "batch": BATCH, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "load_average_1m_at_start": os.getloadavg()[0], "layers": {}}
    for name, shape in LAYERS.items():
        fns = contenders(args.clients, *shape)
        for fn in fns.values():  # warm-up (oneDNN primitive creation)
            fn()
        times: dict[str, list[float]] = {key: [] for key in fns}
        for _ in range(args.repeats):
            for key, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        ms = {key: 1e3 * statistics.median(v) for key, v in times.items()}
        row = {f"{key}_ms": round(v, 2) for key, v in ms.items()}
        row.update({f"speed_{key}_over_per_client": round(ms["per_client"] / v, 2) for key, v in ms.items() if key != "per_client"})
        report["layers"][name] = row
        print(json.dumps({name: row}), flush=True)
    report["load_average_1m_at_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
