"""The new models (cnn_fedavg, resnet with augmentation, char_lstm) train the same cohort to the same
updates on the serial, vectorized and Ray runtimes."""

from __future__ import annotations

import os

import pytest
import torch

from fedsim.client import ClientTask, LocalSGD
from fedsim.data.augment import Augmentation
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes import SerialRuntime, VectorizedRuntime
from tests.helpers import REPO

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def federation(kind: str) -> tuple[FederatedData, FunctionalModel]:
    gen = torch.Generator().manual_seed(0)
    sizes = [9, 5, 12, 7]
    n = sum(sizes)
    idx = list(torch.arange(n).split(sizes))
    if kind == "char_lstm":
        x, y = torch.randint(0, 80, (n, 16), generator=gen), torch.randint(0, 80, (n,), generator=gen)
        data = FederatedData(x, y, idx, x[:4], y[:4], input_shape=(16,), num_classes=80, kind="sequence", vocab_size=80)
        model = build_model(kind, seed=0, input_shape=(16,), num_classes=80, input_kind="sequence", vocab_size=80, lstm_hidden=24)
        return data, FunctionalModel(model)
    shape = (1, 28, 28) if kind == "cnn_fedavg" else (3, 32, 32)
    x, y = torch.randn(n, torch.Size(shape).numel(), generator=gen), torch.randint(0, 10, (n,), generator=gen)
    augment = Augmentation(shape, 4, True) if kind == "resnet" else None
    data = FederatedData(x, y, idx, x[:4], y[:4], input_shape=shape, augment=augment)
    return data, FunctionalModel(build_model(kind, seed=0, input_shape=shape, depth=8))


@pytest.fixture(scope="module")
def local_ray():
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = old


@pytest.mark.parametrize("kind", ["cnn_fedavg", "resnet", "char_lstm"])
def test_serial_vectorized_and_ray_agree(local_ray, kind):
    from fedsim.runtimes.ray_runtime import RayRuntime

    task = ClientTask(LocalSGD(lr=0.05, batch_size=4, epochs=1))
    cohort = [0, 1, 3]
    results = []
    for make in (
        lambda m, d: SerialRuntime(m, d, seed=1),
        lambda m, d: VectorizedRuntime(m, d, seed=1),
        lambda m, d: RayRuntime(m, d, seed=1, num_actors=1),
    ):
        data, model = federation(kind)
        runtime = make(model, data)
        try:
            results.append(runtime.run_cohort(task, model.initial_params(), cohort, 2))
        finally:
            runtime.close()
    for other in results[1:]:
        assert torch.allclose(results[0].updates, other.updates, atol=1e-5, rtol=1e-4)
        assert torch.allclose(results[0].train_loss, other.train_loss, atol=1e-5)
