"""Decentralized rules on real MNIST: equivalences from the math (S002 section 4, spec A.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedsim.algorithms.dpsgd import DPSGD
from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.gossip import GossipAveraging
from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.data.federated import FederatedData
from fedsim.data.mnist import load_mnist
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes.serial import SerialRuntime
from fedsim.topology import build_topology, consensus_distance, second_eigenvalue_modulus

N = 8


@pytest.fixture(scope="module")
def federation():
    """8 nodes, 150 real MNIST training images each (label-skewed: sorted by label), logistic model."""
    x, y, xt, yt = load_mnist()
    order = np.argsort(y[:1200], kind="stable")
    data = FederatedData(torch.from_numpy(x[:1200]), torch.from_numpy(y[:1200]),
                         [torch.from_numpy(part) for part in np.array_split(order, N)],
                         torch.from_numpy(xt[:500]), torch.from_numpy(yt[:500]))
    model = FunctionalModel(build_model("logistic", seed=0))
    return SerialRuntime(model, data, seed=0), model.initial_params()


def _task(steps: int = 1) -> ClientTask:
    return ClientTask(LocalSGD(lr=0.1, batch_size=16, steps=steps))


@pytest.mark.parametrize("steps", [1, 3])
def test_dpsgd_with_average_matrix_is_parallel_sgd(federation, steps):
    """W = 11^T/n (complete graph, Metropolis-Hastings): every node holds the parallel-SGD / local-SGD iterate."""
    runtime, w0 = federation
    dpsgd = DPSGD(topology=build_topology("complete", N), task=_task(steps))
    fedavg = FedAvg(num_clients=N, clients_per_round=N, task=_task(steps), weighting="uniform")
    x, w = dpsgd.init(w0), fedavg.init(w0)
    for rnd in range(3):
        dpsgd.round(x, rnd, runtime)
        fedavg.round(w, rnd, runtime)
        assert torch.allclose(x.params, w.params.expand(N, -1), atol=1e-6)
        assert consensus_distance(x.params) < 1e-12


@pytest.mark.parametrize("family,form", [("ring", "atc"), ("ring", "cta"), ("star", "atc"),
                                         ("directed_exponential", "cta"), ("one_peer_exponential", "atc")])
def test_virtual_average_follows_sgd_on_node_averaged_gradients(federation, family, form):
    """S002 section 4.6: xbar_{t+1} = xbar_t - eta * mean_i g_i for any doubly stochastic W."""
    runtime, w0 = federation
    algo = DPSGD(topology=build_topology(family, N), task=_task(), form=form)
    state = algo.init(w0)
    for rnd in range(4):
        before = state.params.clone()
        updates = runtime.run_cohort(algo.task, before, list(range(N)), rnd).updates  # -eta g_i at x_i
        algo.round(state, rnd, runtime)
        assert torch.allclose(state.params.mean(0), before.mean(0) + updates.mean(0), atol=1e-6)
    assert consensus_distance(state.params) > 0


def test_atc_and_cta_differ_only_in_order(federation):
    runtime, w0 = federation
    topo = build_topology("ring", N)
    atc, cta = DPSGD(topology=topo, task=_task(), form="atc"), DPSGD(topology=topo, task=_task(), form="cta")
    sa, sc = atc.init(w0), cta.init(w0)
    atc.round(sa, 0, runtime)
    cta.round(sc, 0, runtime)
    u = runtime.run_cohort(atc.task, w0.expand(N, -1), list(range(N)), 0).updates
    w = torch.as_tensor(topo.matrix(0).toarray(), dtype=torch.float32)
    assert torch.allclose(sa.params, w @ (w0 + u), atol=1e-6)
    assert torch.allclose(sc.params, w0 + u, atol=1e-6)  # W X = X while all nodes agree


def test_gossip_contracts_consensus_and_preserves_average(federation):
    runtime, w0 = federation
    topo = build_topology("ring", N)
    lam2 = second_eigenvalue_modulus(topo.matrix(0))
    algo = GossipAveraging(topology=topo, task=_task(5))
    state = algo.init(w0)
    metrics = algo.round(state, 0, runtime)  # local training, then one gossip step
    mean, err = state.params.double().mean(0), metrics.extra["consensus_distance"]
    assert err > 0
    for rnd in range(1, 6):
        metrics = algo.round(state, rnd, runtime)
        assert metrics.extra["consensus_distance"] <= lam2**2 * err * (1 + 1e-4)
        assert torch.allclose(state.params.double().mean(0), mean, atol=1e-6)
        err = metrics.extra["consensus_distance"]
    d = w0.numel()
    assert metrics.bytes_up == N * 2 * 4 * d and metrics.extra["bytes_per_node"] == 2 * 4 * d


def test_node_accuracies_bracket_and_time_varying_bytes(federation):
    runtime, w0 = federation
    algo = DPSGD(topology=build_topology("one_peer_exponential", N), task=_task(3))
    state = algo.init(w0)
    metrics = algo.round(state, 0, runtime)
    assert metrics.extra["bytes_per_node"] == 4 * w0.numel()  # one peer per round
    evaluate = lambda p: (float((runtime.model.logits(p, runtime.data.x_test).argmax(1) == runtime.data.y_test).float().mean()), 0.0)  # noqa: E731
    extra = algo.evaluate_extra(state, evaluate)
    accs = [evaluate(row)[0] for row in state.params]
    assert extra["node_accuracy_min"] == min(accs) < extra["node_accuracy_mean"] == pytest.approx(np.mean(accs))


def test_choco_identity_gamma_one_is_dpsgd(federation):
    """Spec A.3: with Q = identity and gamma = 1, x_hat = x^{t+1/2} and the consensus step is W x^{t+1/2}."""
    from fedsim.algorithms.choco import ChocoSGD
    from fedsim.compression import Identity

    runtime, w0 = federation
    topo = build_topology("ring", N)
    choco = ChocoSGD(topology=topo, task=_task(2), compressor=Identity(), gamma=1.0)
    dpsgd = DPSGD(topology=topo, task=_task(2))
    sc, sd = choco.init(w0), dpsgd.init(w0)
    for rnd in range(3):
        mc, md = choco.round(sc, rnd, runtime), dpsgd.round(sd, rnd, runtime)
        assert torch.allclose(sc.params, sd.params, atol=1e-6)
        assert mc.bytes_up == md.bytes_up


@pytest.mark.parametrize("name,params", [("top_k", {"ratio": 0.05}), ("qsgd", {"levels": 4}), ("sign", {})])
def test_choco_compressed_keeps_average_and_sends_fewer_bytes(federation, name, params):
    """Symmetric doubly stochastic W: the CHOCO consensus step leaves the node average unchanged."""
    from fedsim.algorithms.choco import ChocoSGD
    from fedsim.compression import build_compressor

    runtime, w0 = federation
    algo = ChocoSGD(topology=build_topology("ring", N), task=_task(), compressor=build_compressor(name, **params), gamma=0.4)
    state = algo.init(w0)
    for rnd in range(3):
        before = state.params.clone()
        updates = runtime.run_cohort(algo.task, before, list(range(N)), rnd).updates
        metrics = algo.round(state, rnd, runtime)
        assert torch.allclose(state.params.mean(0), before.mean(0) + updates.mean(0), atol=1e-5)
        assert 0 < metrics.extra["bytes_per_node"] < 2 * 4 * w0.numel()


@pytest.mark.parametrize("rule", ["dpsgd", "choco"])
def test_serial_and_vectorized_runtimes_agree(federation, rule):
    """Local training of all n nodes goes through the runtime: the engine must not change the result."""
    from fedsim.algorithms.choco import ChocoSGD
    from fedsim.compression import build_compressor
    from fedsim.runtimes.vectorized import VectorizedRuntime

    serial, w0 = federation
    vectorized = VectorizedRuntime(serial.model, serial.data, seed=0)
    topo = build_topology("exponential", N)
    results = []
    for runtime in (serial, vectorized):
        if rule == "dpsgd":
            algo = DPSGD(topology=topo, task=_task(3), form="cta")
        else:
            algo = ChocoSGD(topology=topo, task=_task(3), compressor=build_compressor("top_k", ratio=0.1), gamma=0.5)
        state = algo.init(w0)
        for rnd in range(3):
            algo.round(state, rnd, runtime)
        results.append(state.params)
    assert torch.allclose(results[0], results[1], atol=1e-5)


@pytest.mark.parametrize("kind", ["dpsgd", "choco"])
def test_float64_parameters_gossip_in_float64(kind):
    """W is cast to the parameters' dtype (it was float32, so float64 runs failed in W @ X)."""
    from fedsim.algorithms.choco import ChocoSGD
    from fedsim.compression import build_compressor
    from tests.helpers import heterogeneous_quadratic

    data, model, _ = heterogeneous_quadratic(num_clients=N)
    runtime = SerialRuntime(model, data, seed=0)
    task = ClientTask(LocalSGD(lr=0.1, batch_size=64, steps=1))
    topo = build_topology("ring", N)
    algo = (DPSGD(topology=topo, task=task) if kind == "dpsgd" else
            ChocoSGD(topology=topo, task=task, compressor=build_compressor("top_k", k=2, feedback="ef"), gamma=0.5))
    state = algo.init(torch.zeros(model.dim, dtype=torch.float64))
    mean0 = state.params.mean(0)
    grads = torch.stack([model.loss_and_grad(state.params[i], *data.client_data(i))[1] for i in range(N)])
    algo.round(state, 0, runtime)
    assert state.params.dtype == torch.float64
    # Doubly stochastic W: the node average takes the averaged gradient step, to float64 precision.
    torch.testing.assert_close(state.params.mean(0), mean0 - 0.1 * grads.mean(0), atol=1e-12, rtol=0)
