"""Start-up: seconds from process start to the first round of the quickstart.

Each repeat starts a fresh ``python -m fedsim run configs/quickstart.yaml`` with one round and no
plot, and subtracts the run's own ``wall_s`` (round 1 and its evaluation) from the process's
wall time; what remains is interpreter start, imports, config validation, data loading (from
the preprocessed-array cache after the first start) and building the model and runtime. Beside
it, ``python -c "import torch"`` is timed the same way: the floor no fedsim change can go below.
With ``--baseline PATH`` (another checkout, e.g. ``/work/main`` before a change) the same command
also runs on that checkout's code, so before and after are measured side by side. Repeats
alternate the contenders; medians, ratios and the load average are printed as JSON.

``--phases`` adds one in-process timeline of the same start-up (fresh process, wall and CPU
seconds since the interpreter started): ``import torch``, the CLI's imports, the experiment
modules, config load and validation, ``Experiment()`` (data from the array cache, model,
algorithm, runtime), and round 1.

    FEDSIM_DATA=../shared/data python benchmarks/startup.py [--repeats 5] [--baseline ../main] [--phases]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_ARGS = ["run", "configs/quickstart.yaml", "-q", "--set", "algorithm.rounds=1", "--set", "output.plot=false"]


def timed(args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> tuple[float, float]:
    """Wall seconds of a fresh process and the CPU seconds (user + system) it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=cwd, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def to_round_1(code: Path, out: Path) -> tuple[float, float]:
    """Wall seconds before round 1 of the quickstart in a fresh process running the fedsim of checkout
    ``code``, and the CPU seconds of the whole one-round process."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    # Run from inside the checkout: ``python -m`` puts the working directory first on sys.path.
    total, cpu = timed([sys.executable, "-m", "fedsim", *RUN_ARGS, "--out", str(out)], env, cwd=code)
    first_round = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["wall_s"]
    return total - first_round, cpu


def phases() -> None:
    """Child process: the quickstart's start-up step by step, as ``fedsim run`` does it; JSON on stdout."""
    marks: list[tuple[str, float, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), time.process_time()))

    mark("script start")
    from fedsim.cli.app import freeze_start_up, start_up

    freeze_start_up()
    with start_up():
        mark("fedsim.cli.app (typer, rich)")
        import torch  # noqa: F401

        mark("import torch")
        from fedsim.cli.app import _load
        from fedsim.experiment import Experiment

        mark("fedsim.experiment and the config schema")
        cfg = _load(REPO / "configs/quickstart.yaml", RUN_ARGS[4::2])
        mark("config load and validation")
        experiment = Experiment(cfg)
        mark("Experiment(): data (array cache), model, algorithm, runtime")
    from fedsim.output import RunFolder

    with tempfile.TemporaryDirectory() as tmp:
        experiment.run(RunFolder.create(Path(tmp) / "run"))
    mark("round 1, its evaluation and the summary")
    # Interpreter start (before this script's first line): from the process's start time.
    with open("/proc/self/stat") as fh:
        started_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    offset = (uptime - started_ticks / ticks) - (time.perf_counter() - marks[0][1])
    rows, prev = [], (marks[0][1], marks[0][2])
    for name, wall, cpu in marks[1:]:
        rows.append({"phase": name, "wall_s": wall - prev[0], "cpu_s": cpu - prev[1], "since_process_start_s": offset + wall - marks[0][1]})
        prev = (wall, cpu)
    print(json.dumps({"interpreter_start_s": offset, "phases": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout whose fedsim is timed side by side (before a change)")
    parser.add_argument("--phases", action="store_true", help="add one in-process timeline of the start-up")
    parser.add_argument("--phase-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.phase_child:
        phases()
        return
    load_start = os.getloadavg()
    # wall seconds to round 1 (import torch: to its end) and CPU seconds of the whole process
    times: dict[str, list[tuple[float, float]]] = {"fedsim": [], "import_torch": []}
    if args.baseline:
        times["baseline"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats + 1):  # the first start writes the array cache: not counted
            fedsim_s = to_round_1(REPO, Path(tmp) / f"run{k}")
            floor = timed([sys.executable, "-c", "import torch"])
            baseline_s = to_round_1(args.baseline.resolve(), Path(tmp) / f"base{k}") if args.baseline else None
            if k:
                times["fedsim"].append(fedsim_s)
                times["import_torch"].append(floor)
                if baseline_s is not None:
                    times["baseline"].append(baseline_s)
    wall = {key: statistics.median(w for w, _ in value) for key, value in times.items()}
    cpu = {key: statistics.median(c for _, c in value) for key, value in times.items()}
    result: dict[str, object] = {
        "benchmark": "startup",
        "seconds_to_round_1_median": wall["fedsim"],
        "seconds_import_torch_median": wall["import_torch"],
        "fedsim_own_s": wall["fedsim"] - wall["import_torch"],
        "ratio_to_import_torch": wall["fedsim"] / wall["import_torch"],
        "cpu_seconds_one_round_process_median": cpu["fedsim"],
        "cpu_seconds_import_torch_median": cpu["import_torch"],
        "target_s": 1.5,
        "seconds_to_round_1_all": [w for w, _ in times["fedsim"]],
        "seconds_import_torch_all": [w for w, _ in times["import_torch"]],
    }
    if args.baseline:
        result.update({
            "baseline": str(args.baseline),
            "baseline_seconds_to_round_1_median": wall["baseline"],
            "baseline_cpu_seconds_one_round_process_median": cpu["baseline"],
            "baseline_seconds_to_round_1_all": [w for w, _ in times["baseline"]],
            "ratio_baseline_over_fedsim": wall["baseline"] / wall["fedsim"],
            "ratio_baseline_over_fedsim_cpu": cpu["baseline"] / cpu["fedsim"],
        })
    if args.phases:
        child = subprocess.run([sys.executable, __file__, "--phase-child"], check=True, cwd=REPO, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
        result["phases"] = json.loads(child.stdout.strip().splitlines()[-1])
    import torch  # only for the thread count, after every timed process

    result.update({
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads_in_runs": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    })
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
