"""GPU runs (skipped without CUDA): device auto picks the GPU and results match the CPU's."""

from __future__ import annotations

import pytest
import torch

from fedsim.client import ClientTask, LocalSGD
from fedsim.data.federated import build_federated_data
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes import SerialRuntime, VectorizedRuntime, resolve_device
from tests.helpers import assert_cohorts_close

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_device_auto_and_missing_cuda():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(FedsimError, match="runtime.device"):
            resolve_device("cuda")


@cuda
@pytest.mark.parametrize("kind", ["logistic", "cnn"])
def test_vectorized_on_gpu_equals_serial_on_cpu(kind):
    data = build_federated_data(dataset="mnist", num_clients=200, partition="dirichlet", partition_params={"alpha": 0.5}, seed=0)
    model = FunctionalModel(build_model(kind, seed=0))
    task = ClientTask(LocalSGD(lr=0.05, batch_size=32))
    cohort = list(range(0, 200, 20))
    cpu = SerialRuntime(model, data, seed=0, device="cpu").run_cohort(task, model.initial_params(), cohort, 0)
    gpu = VectorizedRuntime(FunctionalModel(build_model(kind, seed=0)), data, seed=0, device=resolve_device("auto"))
    assert gpu.data.x_train.is_cuda
    result = gpu.run_cohort(task, model.initial_params(), cohort, 0)
    result.updates, result.train_loss = result.updates.cpu(), result.train_loss.cpu()
    assert_cohorts_close(cpu, result, tol=1e-4)
