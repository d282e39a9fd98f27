"""Start-up time of loading a data set with and without the preprocessed-array cache.

Each measurement is a fresh Python process that imports fedsim and loads the data set's training
and test arrays (``fedsim.data.load_dataset``), then touches every training value (a sum), as a run
does over its rounds. "off" disables the cache (``FEDSIM_CACHE=off``: decompress, check SHA-256,
standardise, as before the cache existed); "cold" points ``FEDSIM_CACHE`` at an empty folder (the
same, plus writing the cache); "warm" reuses the cache that run wrote. The three are interleaved,
``--repeats`` times; the median of each is printed with the load average. Run it where the data
folder is read-only (the cache then goes to ``FEDSIM_CACHE``).

    python benchmarks/data_cache.py --dataset fashion_mnist --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import time, sys
t0 = time.perf_counter()
from fedsim.data import load_dataset
t1 = time.perf_counter()
d = load_dataset(sys.argv[1])
t2 = time.perf_counter()
float(d.x_train.sum()) + float(d.x_test.sum())
t3 = time.perf_counter()
print(t2 - t1, t3 - t1)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    times: dict[str, list[tuple[float, float]]] = {"off": [], "cold": [], "warm": []}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            for kind in ("off", "cold", "warm"):
                env["FEDSIM_CACHE"] = "off" if kind == "off" else cache
                out = subprocess.run([sys.executable, "-c", CHILD, args.dataset], env=env, capture_output=True, text=True, check=True)
                load_s, touched_s = map(float, out.stdout.split())
                times[kind].append((load_s, touched_s))
        loads.append(os.getloadavg()[0])
    result = {
        "dataset": args.dataset,
        "repeats": args.repeats,
        **{f"{k}_load_s": statistics.median(t[0] for t in v) for k, v in times.items()},
        **{f"{k}_load_and_touch_s": statistics.median(t[1] for t in v) for k, v in times.items()},
        "loadavg_1min": loads,
        "cpus": os.cpu_count(),
        "threads": 1,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
