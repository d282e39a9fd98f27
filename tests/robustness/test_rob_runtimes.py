"""Robust objectives are client work: serial and vectorized training agree on unequal clients."""

from __future__ import annotations

import pytest
import torch

from fedsim.client import ClientTask, LocalSGD
from fedsim.data.federated import build_federated_data
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.robustness.training import AdversarialObjective, GradientNormObjective, TulipObjective
from fedsim.runtimes import SerialRuntime, VectorizedRuntime


@pytest.fixture(scope="module")
def skewed():
    return build_federated_data(dataset="mnist", num_clients=600, partition="dirichlet", partition_params={"alpha": 0.3}, seed=3)


OBJECTIVES = [
    AdversarialObjective(attack="fgsm", eps=0.3, mix=0.5),
    AdversarialObjective(attack="pgd", eps=1.0, norm="l2", steps=2, random_start=True),
    GradientNormObjective(eps=0.1, q=1),
    TulipObjective(eps=0.1, lam=0.05),
]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=["fgsm_mix", "pgd_l2_random", "j1", "tulip"])
def test_objectives_agree_serial_vs_vectorized(skewed, objective) -> None:
    model = FunctionalModel(build_model("mlp", seed=0, hidden=(16,)))
    params = model.initial_params()
    task = ClientTask(LocalSGD(lr=0.05, batch_size=16, epochs=1), objective=objective)
    cohort = [3, 17, 250, 599]
    sizes = skewed.client_sizes()[cohort]
    assert len(set(sizes.tolist())) > 1
    a = SerialRuntime(model, skewed, seed=1).run_cohort(task, params, cohort, 2)
    b = VectorizedRuntime(model, skewed, seed=1).run_cohort(task, params, cohort, 2)
    torch.testing.assert_close(a.updates, b.updates, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.train_loss, b.train_loss, atol=1e-5, rtol=0)
    plain = SerialRuntime(model, skewed, seed=1).run_cohort(ClientTask(task.local), params, cohort, 2)
    assert not torch.allclose(a.updates, plain.updates)

