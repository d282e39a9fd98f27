"""Time per call of each compressor on float32 vectors of d = 1e6 and 1e7, as a ratio to one plain copy.

Usage: ``PYTHONPATH=. python benchmarks/compression.py [--sizes 1000000 10000000] [--repeats 5] [--out FILE]``.
Prints (and optionally writes) one JSON object: per size, the median seconds of ``x.clone()`` and,
per compressor, median seconds per call, the ratio to the copy, and bits sent per float32 bit.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time

import torch

from fedsim.compression import build_compressor
from fedsim.seeding import torch_generator


def _specs(d: int) -> dict[str, dict]:
    rows = 1000
    return {
        "identity": {"name": "identity"},
        "top_k_1%": {"name": "top_k", "ratio": 0.01},
        "top_k_1%+ef": {"name": "top_k", "ratio": 0.01, "feedback": "ef"},
        "random_k_1%": {"name": "random_k", "ratio": 0.01},
        "dropout_p0.5": {"name": "dropout", "p": 0.5},
        "qsgd_s15": {"name": "qsgd", "levels": 15},
        "sign": {"name": "sign"},
        "powersgd_r4": {"name": "powersgd", "rank": 4, "shapes": [(rows, d // rows)]},
        "top_k_1%+qsgd_s15": {"name": "sparsify_quantize", "ratio": 0.01, "levels": 15},
        "top_k_1%+ef21": {"name": "top_k", "ratio": 0.01, "feedback": "ef21"},
    }


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(sizes: list[int], repeats: int) -> dict:
    """The benchmark table as a JSON-ready dict."""
    result: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(), "sizes": {}}
    for d in sizes:
        x = torch.randn(d, generator=torch_generator(0, "benchmark"))
        copy = _median_seconds(lambda: x.clone(), repeats)
        row: dict = {"copy_seconds": copy, "compressors": {}}
        for label, spec in _specs(d).items():
            params = dict(spec)
            comp = build_compressor(params.pop("name"), **params)
            gen = torch_generator(0, "compression", d)
            state = comp.compress(x, gen).state  # steady state: residuals and warm starts present
            seconds = _median_seconds(lambda: comp.compress(x, gen, state), repeats)
            bits = comp.compress(x, gen, state).bits
            row["compressors"][label] = {
                "seconds": seconds,
                "ratio_to_copy": seconds / copy,
                "bits_ratio": bits / (32 * d),
            }
        result["sizes"][str(d)] = row
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    text = json.dumps(run(args.sizes, args.repeats), indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
