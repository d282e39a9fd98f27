"""Parallel SGD, FedProx, participation, local-work heterogeneity and schedules against their definitions."""

from __future__ import annotations

import math

import pytest
import torch

from fedsim.algorithms.federated import (
    FedAvg,
    FedAvgM,
    FedProx,
    FullParticipation,
    LocalWork,
    LRSchedule,
    ParallelSGD,
    PoissonSampling,
    UniformSampling,
)
from fedsim.algorithms.sampling import poisson_sample
from fedsim.client import ClientContext, ClientTask, LocalSGD, local_sgd
from fedsim.runtimes import SerialRuntime
from fedsim.seeding import torch_generator
from tests.helpers import logistic, tiny_federation


def run_rounds(algo, data, rounds: int, model=None):
    model = model or logistic()
    state = algo.init(model.initial_params())
    runtime = SerialRuntime(model, data, seed=0)
    metrics = [algo.round(state, rnd, runtime) for rnd in range(rounds)]
    return state.params, metrics


def test_parallel_sgd_equals_fedavg_with_one_local_step_and_full_participation():
    """Gradient form and model form of eq. (255) agree; clients use batches smaller than their data."""
    data = tiny_federation([30, 50, 20, 40])
    for weighting in ("uniform", "samples"):
        psgd = ParallelSGD(num_clients=4, lr=0.2, batch_size=8, weighting=weighting)
        fedavg = FedAvg(
            num_clients=4,
            task=ClientTask(LocalSGD(lr=0.2, batch_size=8, steps=1)),
            weighting=weighting,
            participation=FullParticipation(),
        )
        w_psgd, m = run_rounds(psgd, data, 3)
        w_fedavg, _ = run_rounds(fedavg, data, 3)
        assert m[0].clients == 4
        torch.testing.assert_close(w_psgd, w_fedavg, rtol=0, atol=2e-6)
        assert (w_psgd - logistic().initial_params()).norm() > 1e-2


def test_parallel_sgd_is_minibatch_sgd_on_the_pooled_gradients():
    """w_{t+1} = w_t - eta * (1/K) sum_j g_j with each g_j the client's first minibatch gradient."""
    data = tiny_federation([12, 12, 12])
    model = logistic()
    lr, batch = 0.3, 4
    w0 = model.initial_params()
    w1, _ = run_rounds(ParallelSGD(num_clients=3, lr=lr, batch_size=batch), data, 1)
    grads = []
    for k in range(3):
        x, y = data.client_data(k)
        idx = torch.randperm(12, generator=ClientContext(0, 0, k).generator("batches"))[:batch]
        grads.append(model.loss_and_grad(w0, x[idx], y[idx])[1])
    torch.testing.assert_close(w1, w0 - lr * torch.stack(grads).mean(0), rtol=0, atol=1e-6)


def test_fedprox_with_mu_zero_is_fedavg_exactly_and_mu_pulls_towards_the_global_model():
    data = tiny_federation([40, 60, 30, 50])
    task = ClientTask(LocalSGD(lr=0.1, batch_size=10, epochs=2))
    common = dict(num_clients=4, clients_per_round=3, seed=3)
    w_fedavg, _ = run_rounds(FedAvg(task=task, **common), data, 2)
    w_prox0, _ = run_rounds(FedProx(mu=0.0, task=task, **common), data, 2)
    assert torch.equal(w_fedavg, w_prox0)
    w0 = logistic().initial_params()
    w_prox, _ = run_rounds(FedProx(mu=5.0, task=task, **common), data, 2)
    assert (w_prox - w0).norm() < 0.8 * (w_fedavg - w0).norm()


def test_poisson_inclusion_rate_matches_q():
    q, clients, rounds = 0.1, 50, 2000
    included = torch.zeros(rounds, clients)
    for rnd in range(rounds):
        included[rnd, PoissonSampling(q)(clients, torch_generator(0, "sampling", rnd))] = 1
    sd = math.sqrt(q * (1 - q) / included.numel())
    assert abs(included.mean().item() - q) < 4 * sd
    per_client = included.mean(0)
    assert (per_client - q).abs().max() < 5 * math.sqrt(q * (1 - q) / rounds)
    sizes = included.sum(1)
    assert abs(sizes.var().item() - clients * q * (1 - q)) < 0.2 * clients * q * (1 - q)  # Binomial(K, q) sizes
    assert poisson_sample(10, 1.0, torch_generator(0, "sampling", 0)) == list(range(10))


def test_uniform_sampling_draws_distinct_clients_with_marginal_r_over_k():
    counts = torch.zeros(20)
    for rnd in range(1000):
        cohort = UniformSampling(5)(20, torch_generator(1, "sampling", rnd))
        assert cohort == sorted(set(cohort)) and len(cohort) == 5
        counts[cohort] += 1
    assert (counts / 1000 - 0.25).abs().max() < 5 * math.sqrt(0.25 * 0.75 / 1000)


def test_empty_poisson_round_leaves_the_model_unchanged():
    data = tiny_federation([10, 10])
    algo = FedAvg(num_clients=2, task=ClientTask(LocalSGD(lr=0.1, batch_size=5)), participation=PoissonSampling(1e-9))
    w, metrics = run_rounds(algo, data, 2)
    assert torch.equal(w, logistic().initial_params())
    assert metrics[0].clients == 0 and metrics[0].bytes_up == 0 and math.isnan(metrics[0].train_loss)
    # Not even a server optimizer's momentum moves w: the aggregate stage reports no update at all.
    momentum = FedAvgM(momentum=0.9, num_clients=2, task=ClientTask(LocalSGD(lr=0.1, batch_size=5)),
                       participation=PoissonSampling(1e-9))
    state = momentum.init(logistic().initial_params())
    state.extras["m"] = torch.ones_like(state.params)
    momentum.round(state, 0, SerialRuntime(logistic(), data, seed=0))
    assert torch.equal(state.params, logistic().initial_params())


@pytest.mark.parametrize("per_round", [True, False])
def test_heterogeneous_local_work_gives_each_client_its_drawn_steps(per_round):
    data = tiny_federation([40, 40, 40, 40, 40])
    model = logistic()
    task = ClientTask(LocalSGD(lr=0.1, batch_size=8))
    work = LocalWork("steps", (1, 3, 7), (0.2, 0.3, 0.5), per_round=per_round, seed=0)
    algo = FedAvg(num_clients=5, task=task, participation=FullParticipation(), local_work=work)
    state = algo.init(model.initial_params())
    w0 = state.params.clone()
    runtime = SerialRuntime(model, data, seed=0)
    result = algo.train_cohort(state, list(range(5)), 0, runtime)
    drawn = [work.draw(k, 0) for k in range(5)]
    assert len(set(drawn)) > 1
    assert result.clients == list(range(5))
    for k, steps in enumerate(drawn):
        x, y = data.client_data(k)
        local = local_sgd(model, w0, x, y, LocalSGD(lr=0.1, batch_size=8, steps=steps), ClientContext(0, 0, k).generator("batches"))
        torch.testing.assert_close(result.updates[k], local.params - w0, rtol=0, atol=1e-7)
    if not per_round:  # fixed hardware: the same work every round
        assert [work.draw(k, 7) for k in range(5)] == drawn


def test_lr_schedules_follow_their_formulas():
    cos = LRSchedule("cosine", min_factor=0.1, total_rounds=10)
    assert cos.factor(0) == 1.0
    assert cos.factor(5) == pytest.approx(0.55)  # eq. (194) at t = T/2
    assert cos.factor(10) == pytest.approx(0.1)
    assert all(cos.factor(t) > cos.factor(t + 1) for t in range(10))
    step = LRSchedule("step", gamma=0.5, step_size=3)
    assert [step.factor(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert LRSchedule().factor(99) == 1.0


def test_client_and_server_schedules_scale_the_round():
    data = tiny_federation([20, 20])
    task = ClientTask(LocalSGD(lr=0.2, batch_size=5, steps=1))
    sched = LRSchedule("step", gamma=0.5, step_size=1)
    algo = FedAvg(num_clients=2, task=task, participation=FullParticipation(), client_lr_schedule=sched, server_lr_schedule=sched, server_lr=0.8)
    assert algo.round_task(2).local.lr == pytest.approx(0.05)
    assert algo.lr_at(2) == pytest.approx(0.2)
    # Round 1 of the scheduled run == a constant run with lr 0.1 and server_lr 0.4 started from the same point.
    model = logistic()
    state = algo.init(model.initial_params())
    runtime = SerialRuntime(model, data, seed=0)
    algo.round(state, 0, runtime)
    start = state.params.clone()
    algo.round(state, 1, runtime)
    const = FedAvg(num_clients=2, task=ClientTask(LocalSGD(lr=0.1, batch_size=5, steps=1)), participation=FullParticipation(), server_lr=0.4)
    ref = const.init(start)
    const.round(ref, 1, runtime)
    torch.testing.assert_close(state.params, ref.params, rtol=0, atol=1e-7)
