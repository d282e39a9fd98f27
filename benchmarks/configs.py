"""Every shipped config for 3 rounds on the serial and the vectorized runtime: is vectorized ever slower?

For each ``configs/**/*.yaml`` that ``fedsim run`` accepts, the two runtimes alternate (serial
then vectorized, then the other order, ...) over ``--repeats`` in this one process, with ``algorithm.rounds=3``, one
torch thread and no plot, and the median wall time of ``fedsim.run`` (config to final summary,
data loading included) is reported with the ratio ``serial / vectorized`` (above 1: vectorized
faster). The target is a ratio of at least 1 on every config. The JSON also records the load
average before and after, since the machine may be shared.

    PYTHONPATH=. FEDSIM_DATA=../shared/data python benchmarks/configs.py [--repeats 3] [--only quickstart fedprox] [--out FILE]
"""

from __future__ import annotations

import argparse
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

import fedsim
from fedsim.errors import FedsimError

REPO = Path(__file__).resolve().parent.parent
RUNTIMES = ("serial", "vectorized")


def shipped_configs(only: list[str] | None) -> list[Path]:
    paths = sorted((REPO / "configs").rglob("*.yaml"))
    return [p for p in paths if not only or p.stem in only]


def run_once(path: Path, runtime: str, tmp: str) -> tuple[float, float, float | None]:
    """(wall seconds, this process's CPU seconds, final accuracy) of one 3-round run."""
    overrides = ["algorithm.rounds=3", f"runtime.kind={runtime}", "runtime.device=cpu", "output.plot=false"]
    start, cpu = time.perf_counter(), time.process_time()
    result = fedsim.run(str(path), overrides=overrides, out=tmp)
    return time.perf_counter() - start, time.process_time() - cpu, result.final_accuracy


def bench_config(path: Path, repeats: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    cpu: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    accuracy: dict[str, float | None] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(repeats):
                # Alternate which runtime goes first, so a first run's one-time costs (reading a
                # data set into the page cache, say) fall on both alike.
                for runtime in RUNTIMES if rep % 2 == 0 else RUNTIMES[::-1]:
                    wall, seconds, accuracy[runtime] = run_once(path, runtime, f"{tmp}/{runtime}{rep}")
                    times[runtime].append(wall)
                    cpu[runtime].append(seconds)
    except (FedsimError, ValueError) as err:  # a study config, or a rule that takes another runtime
        return {"config": str(path.relative_to(REPO)), "skipped": str(err).splitlines()[0]}
    serial, vector = (statistics.median(times[r]) for r in RUNTIMES)
    serial_cpu, vector_cpu = (statistics.median(cpu[r]) for r in RUNTIMES)
    return {
        "config": str(path.relative_to(REPO)),
        "serial_s": round(serial, 3),
        "vectorized_s": round(vector, 3),
        "ratio_serial_over_vectorized": round(serial / vector, 3),
        # Process CPU seconds: less inflated than wall time by other jobs on a shared machine.
        "cpu_ratio_serial_over_vectorized": round(serial_cpu / vector_cpu, 3),
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="config file stems to run (default: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict[str, Any] = {
        "benchmark": "shipped configs, 3 rounds, serial vs vectorized (interleaved, median)",
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1m_at_start": os.getloadavg()[0],
        "target": "ratio_serial_over_vectorized >= 1 on every config",
        "configs": [],
    }
    for path in shipped_configs(args.only):
        row = bench_config(path, args.repeats)
        print(json.dumps(row), file=sys.stderr, flush=True)
        report["configs"].append(row)
    ratios = [r["ratio_serial_over_vectorized"] for r in report["configs"] if "ratio_serial_over_vectorized" in r]
    report["min_ratio"] = min(ratios) if ratios else None
    cpu_ratios = [r["cpu_ratio_serial_over_vectorized"] for r in report["configs"] if "cpu_ratio_serial_over_vectorized" in r]
    report["min_cpu_ratio"] = min(cpu_ratios) if cpu_ratios else None
    report["load_average_1m_at_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
