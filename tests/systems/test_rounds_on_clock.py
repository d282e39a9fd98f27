"""Synchronous and asynchronous rounds on the simulated clock, against their limits and hand computations."""

from __future__ import annotations

import pytest
import torch

from fedsim.algorithms.asynchronous import FedAsync, FedBuff
from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.simulated_clock import SimulatedClock, samples_processed
from fedsim.client.local import LocalSGD, minibatch_schedule
from fedsim.client.task import ClientTask
from fedsim.runtimes import SerialRuntime, VectorizedRuntime
from fedsim.systems import ClientProfiles, TraceAvailability, lognormal_profiles
from fedsim.systems.staleness import STALENESS_RULES
from tests.helpers import logistic, tiny_federation

SIZES = [12, 7, 20, 9, 15, 11, 5, 18]
DIM = 7850  # logistic on 784 features, 10 classes


def equal_profiles(k: int) -> ClientProfiles:
    one = torch.ones(k, dtype=torch.float64)
    return ClientProfiles(speed=100 * one, uplink=1e5 * one, downlink=1e5 * one, latency=0 * one)


def fedavg(clock: SimulatedClock | None = None, per_round: int = 4, weighting: str = "samples", **kw) -> FedAvg:
    return FedAvg(num_clients=len(SIZES), clients_per_round=per_round, task=ClientTask(LocalSGD(lr=0.05, batch_size=4)),
                  weighting=weighting, seed=3, clock=clock, **kw)


def run(algorithm, runtime, rounds: int):
    state = algorithm.init(logistic().initial_params())
    rows = [algorithm.round(state, r, runtime) for r in range(rounds)]
    return state.params, rows


@pytest.fixture(scope="module")
def data():
    return tiny_federation(SIZES)


def test_samples_processed_counts_every_minibatch():
    gen = torch.Generator().manual_seed(0)
    for n in (1, 5, 12, 13):
        for local in (LocalSGD(lr=1, batch_size=4, epochs=2), LocalSGD(lr=1, batch_size=4, steps=5), LocalSGD(lr=1, batch_size=4, steps=1)):
            batches = minibatch_schedule(n, local, gen)
            got = samples_processed(torch.tensor([n]), torch.tensor([len(batches)]), 4)
            assert int(got) == sum(len(b) for b in batches)


def test_always_online_clock_without_deadline_is_fedavg(data):
    runtime = SerialRuntime(logistic(), data, seed=3)
    plain, plain_rows = run(fedavg(), runtime, 3)
    clock = SimulatedClock(profiles=lognormal_profiles(len(SIZES), seed=1, speed=50, speed_sigma=1, uplink=1e5,
                                                      uplink_sigma=1, downlink=1e6, downlink_sigma=1, latency=0.1),
                           client_sizes=data.client_sizes())
    timed, rows = run(fedavg(clock), runtime, 3)
    assert torch.equal(plain, timed)
    assert [r.train_loss for r in rows] == [r.train_loss for r in plain_rows]
    assert all(r.extra["clients_dropped"] == 0 for r in rows)
    assert rows[0].extra["sim_time_s"] < rows[1].extra["sim_time_s"] < rows[2].extra["sim_time_s"]


def test_sim_time_matches_a_hand_computation_on_three_clients():
    sizes = [8, 4, 12]
    data = tiny_federation(sizes)
    profiles = ClientProfiles(speed=torch.tensor([4.0, 2.0, 24.0], dtype=torch.float64),
                              uplink=torch.tensor([31400.0, 3140.0, 314000.0], dtype=torch.float64),
                              downlink=torch.tensor([314000.0, 31400.0, 3140.0], dtype=torch.float64),
                              latency=torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64))
    clock = SimulatedClock(profiles=profiles, client_sizes=data.client_sizes())
    algo = FedAvg(num_clients=3, clients_per_round=3, task=ClientTask(LocalSGD(lr=0.05, batch_size=4, epochs=2)), seed=0, clock=clock)
    _, rows = run(algo, SerialRuntime(logistic(), data, seed=0), 2)
    nbytes = DIM * 4  # float32 up and down
    # client 0: 16/4 + 31400/31400 + 31400/314000 + 0.5 = 5.6; client 1: 8/2 + 10 + 1 = 15; client 2: 24/24 + 0.1 + 10 + 1 = 12.1
    assert nbytes == 31400
    assert rows[0].extra["sim_time_s"] == pytest.approx(15.0)
    assert rows[1].extra["sim_time_s"] == pytest.approx(30.0)


def test_deadline_drops_exactly_the_late_clients(data):
    profiles = lognormal_profiles(len(SIZES), seed=5, speed=3, speed_sigma=1.0, uplink=1e6, uplink_sigma=0.5,
                                  downlink=1e6, downlink_sigma=0.5, latency=0.0)
    runtime = SerialRuntime(logistic(), data, seed=3)
    cohort = fedavg().sample(0)
    sizes = data.client_sizes()[cohort].double()
    idx = torch.tensor(cohort)
    times = sizes / profiles.speed[idx] + DIM * 4 / profiles.uplink[idx] + DIM * 4 / profiles.downlink[idx]
    deadline = float(times.sort().values[1:3].mean())  # between the 2nd and 3rd fastest
    late = [c for c, t in zip(cohort, times.tolist()) if t > deadline]
    clock = SimulatedClock(profiles=profiles, client_sizes=data.client_sizes(), deadline_s=deadline)
    algo = fedavg(clock)
    state = algo.init(logistic().initial_params())
    row = algo.round(state, 0, runtime)
    assert row.clients == 2 and row.extra["clients_dropped"] == len(late) == 2
    assert row.extra["sim_time_s"] == pytest.approx(deadline)
    # the model equals FedAvg over the clients that made it
    kept = [c for c in cohort if c not in late]
    ref = fedavg(participation=lambda n, g: kept)
    ref_state = ref.init(logistic().initial_params())
    ref.round(ref_state, 0, runtime)
    assert torch.allclose(state.params, ref_state.params, atol=1e-7)


def test_partial_work_contributes_the_steps_that_fit(data):
    profiles = equal_profiles(len(SIZES))
    clock = SimulatedClock(profiles=profiles, client_sizes=data.client_sizes(), deadline_s=DIM * 8 / 1e5 + 0.1, partial_work=True)
    algo = fedavg(clock, per_round=8)
    state = algo.init(logistic().initial_params())
    result = algo.train_cohort(state, algo.sample(0), 0, SerialRuntime(logistic(), data, seed=3))
    # 0.1 s of compute at 100 samples/s is 10 samples: 2 steps of batch 4 (a full epoch is more for every client)
    assert result.steps.tolist() == [min(2, (n + 3) // 4) for n in SIZES]


def test_offline_clients_are_never_sampled(tmp_path, data):
    trace = tmp_path / "on.csv"
    # clients 0-3 online for the first 5 s, clients 4-7 afterwards
    trace.write_text("client,start,end\n" + "".join(f"{c},{0 if c < 4 else 5},{5 if c < 4 else 1e9}\n" for c in range(8)))
    clock = SimulatedClock(profiles=equal_profiles(8), client_sizes=data.client_sizes(),
                           availability=TraceAvailability.from_csv(trace, 8))
    algo = fedavg(clock, per_round=3)
    runtime = SerialRuntime(logistic(), data, seed=3)
    state = algo.init(logistic().initial_params())
    for rnd in range(12):
        cohort = algo.sample(rnd)
        online = [c for c in range(8) if (c < 4) == (clock.now < 5)]
        assert set(cohort) <= set(online)
        algo.round(state, rnd, runtime)
    assert clock.now > 5


@pytest.mark.parametrize("weighting", ["samples", "uniform"])
def test_fedbuff_with_buffer_equal_to_concurrency_is_fedavg(data, weighting):
    runtime = SerialRuntime(logistic(), data, seed=3)
    plain, plain_rows = run(fedavg(weighting=weighting), runtime, 3)
    clock = SimulatedClock(profiles=equal_profiles(len(SIZES)), client_sizes=data.client_sizes())
    buff = FedBuff(server=fedavg(weighting=weighting), clock=clock, concurrency=4, buffer_size=4, staleness=STALENESS_RULES["sqrt"])
    params, rows = run(buff, runtime, 3)
    assert torch.allclose(params, plain, atol=1e-7)
    assert [r.clients for r in rows] == [4, 4, 4] and all(r.extra["clients_stale"] == 0 for r in rows)


def test_fedasync_with_one_client_in_flight_is_sequential_fedavg(data):
    runtime = SerialRuntime(logistic(), data, seed=3)
    plain, _ = run(fedavg(per_round=1), runtime, 4)
    clock = SimulatedClock(profiles=equal_profiles(len(SIZES)), client_sizes=data.client_sizes())
    fa = FedAsync(alpha=1.0, server=fedavg(per_round=1), clock=clock, concurrency=1, staleness=STALENESS_RULES["constant"])
    params, _ = run(fa, runtime, 4)
    assert torch.allclose(params, plain, atol=1e-6)


def test_asynchronous_runs_are_deterministic_and_runtime_independent(data):
    profiles = lognormal_profiles(len(SIZES), seed=2, speed=20, speed_sigma=1, uplink=1e5, uplink_sigma=1,
                                  downlink=1e6, downlink_sigma=1, latency=0.1)
    out = []
    for runtime in (SerialRuntime(logistic(), data, seed=3), VectorizedRuntime(logistic(), data, seed=3, device="cpu"),
                    SerialRuntime(logistic(), data, seed=3)):
        clock = SimulatedClock(profiles=profiles, client_sizes=data.client_sizes())
        buff = FedBuff(server=fedavg(), clock=clock, concurrency=5, buffer_size=2, staleness=STALENESS_RULES["sqrt"])
        params, rows = run(buff, runtime, 6)
        out.append((params, [(r.clients, r.extra["sim_time_s"], r.extra["clients_stale"]) for r in rows]))
    assert out[0][1] == out[1][1] == out[2][1]
    assert torch.equal(out[0][0], out[2][0]) and torch.allclose(out[0][0], out[1][0], atol=1e-5)
    assert any(stale > 0 for _, _, stale in out[0][1])  # slow clients do arrive stale


def test_fedbuff_resumes_from_its_state_dict_with_clients_in_flight(data):
    profiles = lognormal_profiles(len(SIZES), seed=2, speed=20, speed_sigma=1, uplink=1e5, uplink_sigma=1,
                                  downlink=1e6, downlink_sigma=1, latency=0.1)
    runtime = SerialRuntime(logistic(), data, seed=3)

    def make() -> FedBuff:
        clock = SimulatedClock(profiles=profiles, client_sizes=data.client_sizes())
        return FedBuff(server=fedavg(), clock=clock, concurrency=5, buffer_size=2, staleness=STALENESS_RULES["sqrt"])

    straight, _ = run(make(), runtime, 6)
    first = make()
    state = first.init(logistic().initial_params())
    for r in range(3):
        first.round(state, r, runtime)
    saved = torch.load(_roundtrip(first.state_dict()), weights_only=True)
    second = make()
    second.load_state_dict(saved)
    for r in range(3, 6):
        second.round(state, r, runtime)
    assert torch.equal(state.params, straight)


def _roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf
