"""Randomized pairwise gossip and AD-PSGD on the simulated clock."""

from __future__ import annotations

import pytest
import torch

from fedsim.algorithms.async_gossip import AsyncGossip
from fedsim.algorithms.simulated_clock import SimulatedClock
from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.config.topology import TopologySection
from fedsim.errors import FedsimError
from fedsim.runtimes import SerialRuntime, VectorizedRuntime
from fedsim.systems import lognormal_profiles
from fedsim.topology.gossip import consensus_distance
from tests.helpers import logistic, tiny_federation

NODES = 8


def clock(data) -> SimulatedClock:
    profiles = lognormal_profiles(NODES, seed=4, speed=50, speed_sigma=1, uplink=1e6, uplink_sigma=1,
                                  downlink=1e6, downlink_sigma=1, latency=0.01)
    return SimulatedClock(profiles=profiles, client_sizes=data.client_sizes())


def ring():
    return TopologySection(spec="ring").build(NODES)


def test_pairwise_gossip_keeps_the_average_and_reaches_consensus():
    data = tiny_federation([5] * NODES)
    algo = AsyncGossip(topology=ring(), task=None, clock=clock(data), seed=1)
    x0 = torch.randn(NODES, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = algo.init(torch.zeros(30, dtype=torch.float64))
    state.params = x0.clone()
    runtime = SerialRuntime(logistic(), data, seed=1)
    errors, times = [], []
    for rnd in range(40):
        row = algo.round(state, rnd, runtime)
        errors.append(row.extra["consensus_distance"])
        times.append(row.extra["sim_time_s"])
        assert torch.allclose(state.params.mean(0), x0.mean(0), atol=1e-12)  # sum invariant (Boyd et al., eq. 1)
    assert times == sorted(times)
    assert errors[-1] < 1e-3 * consensus_distance(x0)


def test_adpsgd_event_order_and_models_agree_across_runtimes():
    data = tiny_federation([10, 6, 14, 8, 12, 9, 7, 11])
    task = ClientTask(LocalSGD(lr=0.05, batch_size=4, steps=2))
    out = []
    for runtime in (SerialRuntime(logistic(), data, seed=2), VectorizedRuntime(logistic(), data, seed=2, device="cpu")):
        algo = AsyncGossip(topology=ring(), task=task, clock=clock(data), seed=2)
        state = algo.init(logistic().initial_params())
        rows = [algo.round(state, r, runtime) for r in range(4)]
        out.append((state.params.clone(), [r.extra["sim_time_s"] for r in rows], algo.waves))
    assert out[0][1] == out[1][1] and out[0][2] == out[1][2]
    assert torch.allclose(out[0][0], out[1][0], atol=1e-5)
    assert out[0][2] < 4 * NODES  # updates were trained in batches, not one node per call


def test_adpsgd_resumes_mid_run():
    data = tiny_federation([10, 6, 14, 8, 12, 9, 7, 11])
    task = ClientTask(LocalSGD(lr=0.05, batch_size=4, steps=1))
    runtime = SerialRuntime(logistic(), data, seed=2)

    def make():
        return AsyncGossip(topology=ring(), task=task, clock=clock(data), seed=2)

    a = make()
    sa = a.init(logistic().initial_params())
    for r in range(4):
        a.round(sa, r, runtime)
    b = make()
    sb = b.init(logistic().initial_params())
    for r in range(2):
        b.round(sb, r, runtime)
    c = make()
    c.load_state_dict(b.state_dict())
    for r in range(2, 4):
        c.round(sb, r, runtime)
    assert torch.equal(sa.params, sb.params)


def test_directed_topology_is_refused():
    topo = TopologySection(spec="directed_exponential").build(NODES)
    with pytest.raises(FedsimError, match="undirected"):
        AsyncGossip(topology=topo, task=None, clock=clock(tiny_federation([5] * NODES)))
