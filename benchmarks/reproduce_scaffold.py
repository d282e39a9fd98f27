"""configs/scaffold.yaml before and after the weighted control-variate fix (issue #14).

Runs the shipped config (``weighting: samples``, 10 of 100 Dirichlet(0.1) clients a round) with
the server control variate updated by the objective's weights, ``c <- c + sum_S (n_i/n) Delta c_i``
(fedsim now), and by the old unweighted rule ``c <- c + (1/N) sum_S Delta c_i`` (which converges to
the minimiser of the unweighted average of the client losses), side by side in one process.

    python benchmarks/reproduce_scaffold.py --results benchmarks/results/scaffold_weighting.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from unittest import mock

import torch

from fedsim.algorithms.scaffold import Scaffold
from fedsim.experiment import run

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "scaffold.yaml"


def unweighted(self, runtime):  # the pre-fix rule, whatever the weighting
    return torch.full((self.num_clients,), 1.0 / self.num_clients, dtype=torch.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce_scaffold"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    rows, load0, started = [], os.getloadavg(), time.time()
    for label in ("after: c weighted by n_i/n", "before: c unweighted (1/N)"):
        t0 = time.perf_counter()
        patch = mock.patch.object(Scaffold, "control_weights", unweighted) if label.startswith("before") else mock.MagicMock()
        with patch:
            res = run(CONFIG, [f"runtime.device={args.device}", "output.plot=false"],
                      out=args.out / label.split(":")[0])
        rows.append({"rule": label, "final_accuracy": res.final_accuracy, "wall_s": time.perf_counter() - t0,
                     "loadavg": os.getloadavg()})
        print(json.dumps(rows[-1]), flush=True)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps({"config": "configs/scaffold.yaml", "rows": rows, "conditions": {
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "loadavg_start": load0,
            "loadavg_end": os.getloadavg(), "wall_s": time.time() - started}}, indent=2))


if __name__ == "__main__":
    main()
