"""Where the Ray runtime's time goes, beside the vectorized runtime on the same rounds.

The workload of ``benchmarks/fedavg_mnist.py`` (FedAvg, MNIST logistic, 100 IID clients, all per
round, E = 1, B = 32, lr 0.1) on a local Ray instance. Start-up is itemised (Ray's own start,
putting the training set into the object store -- as fedsim does it, numpy arrays mapped
without a copy, and as a pickled ``FederatedData`` for comparison -- and the actors up with the
data loaded); every round is split into the driver's submission, the wait until an actor starts
its block, the actor's training of the block, and the rest (returning and gathering the results),
with the vectorized runtime's time for the same round measured just before it in the same process.

    PYTHONPATH=. FEDSIM_DATA=../shared/data python benchmarks/ray_profile.py [--rounds 6] [--model logistic] [--out x.json]
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
from fedsim.data.federated import build_federated_data
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes import VectorizedRuntime, ray_runtime


class TimedWorker(ray_runtime.ClientWorker):
    """The runtime's actor, reporting when each block started (wall clock) and how long it trained."""

    def run(self, *args: Any) -> Any:  # type: ignore[override]
        began, start = time.time(), time.perf_counter()
        result = super().run(*args)
        return result, began, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--model", default="logistic", choices=["logistic", "mlp", "cnn"])
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance (one actor each)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import ray

    data = build_federated_data(dataset="mnist", num_clients=100, partition="iid", seed=0)
    model = FunctionalModel(build_model(args.model, seed=0))
    task = ClientTask(LocalSGD(lr=0.1, batch_size=32, epochs=1))
    cohort, params = list(range(100)), model.initial_params()
    report: dict[str, Any] = {"workload": f"FedAvg MNIST {args.model}, 100 IID clients, all per round, E=1, B=32, lr=0.1",
                              "load_average_1m_at_start": os.getloadavg()[0], "driver_torch_threads": torch.get_num_threads()}
    start = time.perf_counter()
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, logging_level="warning", log_to_driver=False)
    startup: dict[str, float] = {"ray_init_s": time.perf_counter() - start}
    try:
        for name, obj in (("put_numpy_arrays_s", ray_runtime.SharedData(data)), ("put_pickled_tensors_s", data)):
            start = time.perf_counter()
            ref = ray.put(obj)
            startup[name] = time.perf_counter() - start
            del ref
        ray_runtime.ClientWorker = TimedWorker  # type: ignore[misc]
        start = time.perf_counter()
        runtime = ray_runtime.RayRuntime(model, data, seed=0, device="cpu")
        startup["runtime_start_s"] = time.perf_counter() - start
        startup.update({f"runtime_{k}": v for k, v in runtime.startup.items()})
        report["startup"] = {k: round(v, 3) for k, v in startup.items()}
        report["actors"], report["actor_threads"] = runtime.num_actors, runtime.actor_threads
        vectorized = VectorizedRuntime(model, data, seed=0, threads=1)
        rounds = []
        for rnd in range(args.rounds):
            start = time.perf_counter()
            vectorized.run_cohort(task, params, cohort, rnd)
            vec_s = time.perf_counter() - start
            began, start = time.time(), time.perf_counter()
            pending = runtime.submit(task, params, cohort, rnd)
            submit_s = time.perf_counter() - start
            blocks = runtime._ray.get(pending.refs)
            total_s = time.perf_counter() - start
            waits = [b[1] - began - submit_s for b in blocks]
            trains = [b[2] for b in blocks]
            slowest = max(range(len(blocks)), key=lambda i: waits[i] + trains[i])
            rounds.append({
                "vectorized_s": vec_s, "ray_s": total_s, "submit_s": submit_s, "until_actor_starts_s": waits[slowest],
                "actor_trains_s": trains[slowest], "return_and_gather_s": total_s - submit_s - waits[slowest] - trains[slowest],
                "load_1m": os.getloadavg()[0],
            })
        runtime.close()
    finally:
        ray.shutdown()
    report["rounds"] = [{k: round(v, 4) for k, v in r.items()} for r in rounds]
    steady = rounds[1:] if len(rounds) > 1 else rounds  # round 0 includes each engine's one-time warm-up
    report["steady_state_medians"] = {k: round(statistics.median(r[k] for r in steady), 4) for k in rounds[0]}
    med = report["steady_state_medians"]
    report["ratio_ray_over_vectorized_per_round"] = round(med["ray_s"] / med["vectorized_s"], 2)
    report["load_average_1m_at_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
