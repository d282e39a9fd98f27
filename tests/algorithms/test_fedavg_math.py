"""FedAvg against the equations it must reproduce (spec section 3.2-3.3)."""

from __future__ import annotations

import torch

from fedsim.algorithms.aggregation import aggregation_weights, weighted_mean
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client import ClientTask, LocalSGD
from fedsim.data.federated import FederatedData
from fedsim.models import FunctionalModel, build_model
from fedsim.runtimes import SerialRuntime
from tests.helpers import tiny_federation


def gradient(model: FunctionalModel, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model.loss_and_grad(w, x, y)[1]


def one_round(data: FederatedData, task: ClientTask, weighting: str, clients: int) -> tuple[torch.Tensor, torch.Tensor, FunctionalModel]:
    model = FunctionalModel(build_model("logistic", seed=0))
    algo = FedAvg(num_clients=data.num_clients, clients_per_round=clients, task=task, weighting=weighting, seed=0)
    state = algo.init(model.initial_params())
    w0 = state.params.clone()
    algo.round(state, 0, SerialRuntime(model, data, seed=0))
    return w0, state.params, model


def test_one_full_batch_step_equals_synchronous_gradient_averaging():
    sizes = [30, 50, 20]
    data = tiny_federation(sizes)
    lr = 0.3
    # batch_size >= client size: each client takes exactly one full-batch gradient step.
    task = ClientTask(LocalSGD(lr=lr, batch_size=64, steps=1))
    for weighting in ("samples", "uniform"):
        w0, w1, model = one_round(data, task, weighting, clients=3)
        grads = torch.stack([gradient(model, w0, *data.client_data(k)) for k in range(3)])
        p = torch.tensor(sizes, dtype=torch.float64) / sum(sizes) if weighting == "samples" else torch.full((3,), 1 / 3, dtype=torch.float64)
        expected = w0 - lr * (p.float() @ grads)  # eq. (255) with f = sum_k p_k f_k
        torch.testing.assert_close(w1, expected, rtol=0, atol=1e-6)
    # With sample weights, the averaged gradient is the gradient of the pooled data.
    w0, w1, model = one_round(data, task, "samples", clients=3)
    torch.testing.assert_close(w1, w0 - lr * gradient(model, w0, data.x_train, data.y_train), rtol=0, atol=1e-6)


def test_sample_weighting_differs_from_uniform_on_unequal_clients():
    data = tiny_federation([10, 90])
    task = ClientTask(LocalSGD(lr=0.3, batch_size=128, steps=1))
    _, w_samples, _ = one_round(data, task, "samples", clients=2)
    _, w_uniform, _ = one_round(data, task, "uniform", clients=2)
    assert (w_samples - w_uniform).norm() > 1e-4
    torch.testing.assert_close(aggregation_weights(torch.tensor([10, 90]), "samples"), torch.tensor([0.1, 0.9], dtype=torch.float64))


def test_model_averaging_equals_pseudo_gradient_form_for_several_local_steps():
    """eq. (259) = eq. (260): averaging local models = stepping with the summed local gradients."""
    data = tiny_federation([40, 40, 40, 40])
    lr, batch = 0.1, 16
    task = ClientTask(LocalSGD(lr=lr, batch_size=batch, epochs=2))
    model = FunctionalModel(build_model("logistic", seed=0))
    runtime = SerialRuntime(model, data, seed=0)
    w0 = model.initial_params()
    cohort = [0, 2, 3]
    result = runtime.run_cohort(task, w0, cohort, rnd=0)
    averaged_models = (w0 + result.updates).mean(0)
    # Replay each client's minibatches and sum its gradients g^j_{t,E}.
    from fedsim.client import ClientContext, minibatch_schedule

    summed = []
    for k in cohort:
        x, y = data.client_data(k)
        w, g_sum = w0.clone(), torch.zeros_like(w0)
        for idx in minibatch_schedule(len(y), task.local, ClientContext(0, 0, k).generator("batches")):
            g = gradient(model, w, x[idx], y[idx])
            g_sum += g
            w = w - lr * g
        summed.append(g_sum)
    pseudo = w0 - lr * torch.stack(summed).mean(0)
    torch.testing.assert_close(averaged_models, pseudo, rtol=0, atol=1e-5)
    torch.testing.assert_close(weighted_mean(result.updates, torch.full((3,), 1 / 3, dtype=torch.float64)), result.updates.mean(0))
