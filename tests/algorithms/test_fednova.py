"""FedNova: equal local work is FedAvg; unequal work removes FedAvg's objective inconsistency."""

from __future__ import annotations

import torch

from fedsim.algorithms.federated import FedAvg, FedNova, FullParticipation, LocalWork
from fedsim.algorithms.fednova import accumulation_norm
from fedsim.client import ClientTask, LocalSGD
from fedsim.client.local import sgd_step
from fedsim.runtimes import SerialRuntime
from tests.helpers import heterogeneous_quadratic, logistic, tiny_federation


def train(algo, data, model, rounds: int, start: torch.Tensor):
    state = algo.init(start)
    runtime = SerialRuntime(model, data, seed=0)
    for rnd in range(rounds):
        algo.round(state, rnd, runtime)
    return state.params


def test_equal_local_steps_make_fednova_fedavg():
    data = tiny_federation([12, 7, 20, 9, 15])
    common = dict(num_clients=5, clients_per_round=3, task=ClientTask(LocalSGD(lr=0.05, batch_size=4, steps=3, weight_decay=0.01)), seed=2)
    start = logistic().initial_params()
    torch.testing.assert_close(train(FedNova(**common), data, logistic(), 3, start), train(FedAvg(**common), data, logistic(), 3, start))


def test_accumulation_norm_is_the_l1_norm_of_the_local_solvers_coefficients():
    # w_tau = rho^tau w_0 - eta sum_k rho^(tau-1-k) g_k: with constant g the update is -eta ||a||_1 g
    lr, wd, g = 0.1, 0.5, torch.tensor([1.0], dtype=torch.float64)
    local = LocalSGD(lr=lr, batch_size=1, weight_decay=wd)
    for tau in (1, 4, 9):
        w = torch.zeros(1, dtype=torch.float64)
        for _ in range(tau):
            w = sgd_step(w, g, w, local)
        assert torch.allclose(-w / (lr * g), accumulation_norm(torch.tensor([tau]), lr, wd))
    assert accumulation_norm(torch.tensor([7]), lr).item() == 7


def test_fednova_removes_the_objective_inconsistency_of_heterogeneous_steps():
    data, model, w_star = heterogeneous_quadratic(num_clients=4)
    task = ClientTask(LocalSGD(lr=0.01, batch_size=64, steps=1))  # full-batch local GD
    work = LocalWork("steps", (1, 2, 16, 32), per_round=False)  # fixed per client: some devices do 32x the work
    common = dict(num_clients=4, task=task, participation=FullParticipation(), weighting="uniform", local_work=work)
    start = torch.zeros(model.dim, dtype=torch.float64)
    steps = [work.draw(k, 0) for k in range(4)]
    assert len(set(steps)) > 1
    fedavg = train(FedAvg(**common), data, model, 600, start)
    fednova = train(FedNova(**common), data, model, 600, start)
    # FedAvg's fixed point weighs client i by tau_i (Wang et al. 2020, Theorem 1); FedNova's by p_i
    assert (fednova - w_star).norm() < 0.1 * (fedavg - w_star).norm()
