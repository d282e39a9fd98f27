"""Start-up: seconds from process start to the first round of the quickstart.

Each repeat starts a fresh ``python -m fedsim run configs/quickstart.yaml`` with one round and no
plot, and subtracts the run's own ``wall_s`` (round 1 and its evaluation) from the process's
wall time; what remains is interpreter start, imports, config validation, data loading (from
the preprocessed-array cache after the first start) and building the model and runtime. Beside
it, ``python -c "import torch"`` is timed the same way: the floor no fedsim change can go below.
Repeats alternate the two; medians and the load average are printed as JSON.

    FEDSIM_DATA=../shared/data python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    to_round_1, torch_import = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats + 1):  # the first start writes the array cache: not counted
            out = Path(tmp) / f"run{k}"
            total = timed([sys.executable, "-m", "fedsim", "run", "configs/quickstart.yaml", "-q", "--out", str(out),
                           "--set", "algorithm.rounds=1", "--set", "output.plot=false"])
            first_round = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["wall_s"]
            floor = timed([sys.executable, "-c", "import torch"])
            if k:
                to_round_1.append(total - first_round)
                torch_import.append(floor)
    print(json.dumps({
        "benchmark": "startup",
        "seconds_to_round_1_median": statistics.median(to_round_1),
        "seconds_import_torch_median": statistics.median(torch_import),
        "target_s": 1.5,
        "seconds_to_round_1_all": to_round_1,
        "seconds_import_torch_all": torch_import,
        "load_average": os.getloadavg(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }, indent=2))


if __name__ == "__main__":
    main()
