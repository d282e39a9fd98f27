"""The Ray runtime on a two-node Ray cluster started on this machine: same results as serial (FedAvg, FedProx,
SCAFFOLD, top-k with error feedback, DP-Fed-LS, D-PSGD, DP-LSSGD; a CNN trained client by client in the actors), actors
on both nodes, and a round that survives an actor killed mid-round with an identical result.

Ray is started once for the module (startup dominates on two cores) and shut down at its end.
"""

from __future__ import annotations

import os

import pytest
import torch

from fedsim.client import ClientTask, LocalSGD
from fedsim.data.federated import build_federated_data
from fedsim.experiment import run
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.output import read_metrics
from fedsim.runtimes import SerialRuntime, VectorizedRuntime
from fedsim.runtimes.ray_runtime import SharedData
from tests.helpers import REPO, assert_cohorts_close, assert_rows_close
from tests.runtimes.test_equivalence import case_config

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # Worker processes inherit the environment: make this checkout importable there.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, logging_level="warning", log_to_driver=False)
    yield nodes
    ray.shutdown()
    nodes.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = old


@pytest.mark.parametrize("case", ["fedavg", "fedprox", "scaffold", "topk_ef", "dp_fed_ls_every_step", "dpsgd", "dp_lssgd"])
def test_ray_run_equals_serial_on_two_nodes(tmp_path, cluster, case):
    cfg = case_config(tmp_path, case)
    serial = run(cfg, out=tmp_path / "serial")
    distributed = run(cfg, overrides=["runtime.kind=ray", f"runtime.address={cluster.address}"], out=tmp_path / "ray")
    assert_rows_close(read_metrics(serial.run_dir), read_metrics(distributed.run_dir))
    assert ray.is_initialized(), "a runtime that joined a cluster must not shut it down"


def test_shared_data_round_trips_through_pickle_buffers():
    """The object store's form of the data: numpy arrays sent out of band, rebuilt as equal tensors."""
    import pickle

    data = build_federated_data(dataset="mnist", num_clients=30, partition="dirichlet", partition_params={"alpha": 0.5}, seed=1)
    buffers: list[pickle.PickleBuffer] = []
    blob = pickle.dumps(SharedData(data), protocol=5, buffer_callback=buffers.append)
    assert len(blob) < 100_000 and sum(memoryview(b).nbytes for b in buffers) >= data.x_train.numel() * 4
    back = pickle.loads(blob, buffers=buffers).get()
    for name in SharedData.FIELDS:
        assert torch.equal(getattr(back, name), getattr(data, name))
    assert len(back.client_indices) == 30 and all(torch.equal(a, b) for a, b in zip(back.client_indices, data.client_indices))


def test_ray_cnn_trains_client_by_client_in_actors_equal_to_serial(cluster):
    """conv: auto on CPU actors is the serial-inside-actor path; it equals the serial runtime."""
    from fedsim.runtimes.ray_runtime import RayRuntime

    data = build_federated_data(dataset="mnist", num_clients=200, partition="dirichlet", partition_params={"alpha": 0.5}, seed=1)
    model = FunctionalModel(build_model("cnn", seed=0, channels=(4, 8)))
    task = ClientTask(LocalSGD(lr=0.05, batch_size=16, epochs=1))
    cohort = [2, 5, 11, 40, 77]
    expected = SerialRuntime(model, data, seed=2).run_cohort(task, model.initial_params(), cohort, rnd=1)
    runtime = RayRuntime(model, data, seed=2, device="cpu")
    try:
        assert_cohorts_close(expected, runtime.run_cohort(task, model.initial_params(), cohort, rnd=1))
    finally:
        runtime.close()


def test_killed_actor_block_is_retried_with_identical_result(cluster):
    from fedsim.runtimes.ray_runtime import RayRuntime

    data = build_federated_data(dataset="mnist", num_clients=200, partition="dirichlet", partition_params={"alpha": 0.5}, seed=1)
    model = FunctionalModel(build_model("logistic", seed=0))
    task = ClientTask(LocalSGD(lr=0.1, batch_size=16, epochs=2))
    cohort = list(range(0, 200, 10))
    # The actors run the vectorized engine: a retried block must give what that engine gives in
    # process, to float rounding of a different block split (serial = vectorized is test_equivalence's).
    expected = VectorizedRuntime(model, data, seed=2).run_cohort(task, model.initial_params(), cohort, rnd=3)
    runtime = RayRuntime(model, data, seed=2)
    try:
        assert len(runtime.actors) == 2 and len({node for node, _ in runtime.placement()}) == 2
        pending = runtime.submit(task, model.initial_params(), cohort, rnd=3)
        victim = runtime.actors[0]
        ray.kill(victim)
        result = runtime.collect(pending)
        assert runtime.retries >= 1 and victim not in runtime.actors
        assert_cohorts_close(expected, result, tol=1e-6)
        # The replacement actor serves the next round too.
        again = runtime.run_cohort(task, model.initial_params(), cohort, rnd=3)
        assert_cohorts_close(expected, again, tol=1e-6)
    finally:
        runtime.close()
