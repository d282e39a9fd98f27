"""FedAvgM, FedAdagrad, FedAdam and FedYogi against a direct transcription of Reddi et al. 2021, Algorithm 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedsim.algorithms.base import ServerState
from fedsim.algorithms.federated import FedAdagrad, FedAdam, FedAvg, FedAvgM, FedYogi, FullParticipation
from fedsim.client import ClientTask, LocalSGD
from fedsim.runtimes import SerialRuntime
from tests.helpers import logistic, tiny_federation

TASK = ClientTask(LocalSGD(lr=0.1, batch_size=8))


def pseudo_gradients(steps: int = 6, dim: int = 7) -> list[np.ndarray]:
    """A hand-made sequence: signs flip, magnitudes span three orders, one coordinate stays zero."""
    rng = np.random.default_rng(0)
    out = []
    for t in range(steps):
        d = rng.normal(size=dim) * np.logspace(-3, 0, dim)
        d[0] = 0.0
        d[1] = (-1) ** t * 0.5
        out.append(d)
    return out


def reference(rule: str, deltas: list[np.ndarray], eta: float, beta1: float, beta2: float, tau: float) -> np.ndarray:
    """Algorithm 2 of Reddi et al. 2021 written out in float64 (and Hsu et al. 2019 for momentum)."""
    x = np.linspace(-1, 1, len(deltas[0]))
    m = np.zeros_like(x)
    v = np.full_like(x, tau**2)
    for d in deltas:
        if rule == "fedavgm":
            m = beta1 * m + d
            x = x + eta * m
            continue
        m = beta1 * m + (1 - beta1) * d
        if rule == "fedadagrad":
            v = v + d**2
        elif rule == "fedadam":
            v = beta2 * v + (1 - beta2) * d**2
        else:
            v = v - (1 - beta2) * d**2 * np.sign(v - d**2)
        x = x + eta * m / (np.sqrt(v) + tau)
    return x


@pytest.mark.parametrize(
    "rule, make",
    [
        ("fedavgm", lambda: FedAvgM(momentum=0.7, num_clients=1, clients_per_round=1, task=TASK, server_lr=0.3)),
        ("fedadagrad", lambda: FedAdagrad(beta1=0.7, beta2=0.95, tau=1e-2, num_clients=1, clients_per_round=1, task=TASK, server_lr=0.3)),
        ("fedadam", lambda: FedAdam(beta1=0.7, beta2=0.95, tau=1e-2, num_clients=1, clients_per_round=1, task=TASK, server_lr=0.3)),
        ("fedyogi", lambda: FedYogi(beta1=0.7, beta2=0.95, tau=1e-2, num_clients=1, clients_per_round=1, task=TASK, server_lr=0.3)),
    ],
)
def test_server_update_matches_the_paper_on_a_pseudo_gradient_sequence(rule, make):
    deltas = pseudo_gradients()
    algo = make()
    state = algo.init(torch.linspace(-1, 1, 7, dtype=torch.float64))
    for rnd, d in enumerate(deltas):
        state.params = algo.server_update(state, torch.from_numpy(d), rnd)
    expected = reference(rule, deltas, eta=0.3, beta1=0.7, beta2=0.95, tau=1e-2)
    np.testing.assert_allclose(state.params.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert set(state.extras) >= {"m"}
    # The rules really differ from one another on this sequence.
    others = {r for r in ("fedavgm", "fedadagrad", "fedadam", "fedyogi") if r != rule}
    for other in others:
        assert not np.allclose(expected, reference(other, deltas, 0.3, 0.7, 0.95, 1e-2))


def test_first_adaptive_step_is_eta_times_sign_for_large_pseudo_gradients():
    """With m_{-1}=0, v_{-1}=tau^2 and beta1=0: step = eta * Delta / (sqrt(tau^2 + (1-b2) Delta^2) + tau)."""
    delta = torch.tensor([2.0, -3.0, 0.0], dtype=torch.float64)
    algo = FedAdam(beta1=0.0, beta2=0.0, tau=1e-9, num_clients=1, clients_per_round=1, task=TASK, server_lr=0.5)
    state = ServerState(torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(algo.server_update(state, delta), torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64))


def test_fedavgm_with_zero_momentum_is_fedavg_over_real_rounds():
    data = tiny_federation([30, 30, 30])
    model = logistic()
    runtime = SerialRuntime(model, data, seed=0)
    common = dict(num_clients=3, task=TASK, participation=FullParticipation(), server_lr=0.7)
    a, b = FedAvg(**common), FedAvgM(momentum=0.0, **common)
    sa, sb = a.init(model.initial_params()), b.init(model.initial_params())
    for rnd in range(2):
        a.round(sa, rnd, runtime)
        b.round(sb, rnd, runtime)
    torch.testing.assert_close(sa.params, sb.params, rtol=0, atol=1e-7)
