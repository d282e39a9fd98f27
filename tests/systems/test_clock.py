"""The simulated clock's pure parts: task times, deadlines, availability, the event queue."""

from __future__ import annotations

import math

import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.systems import (
    AlwaysAvailable,
    ClientProfiles,
    DiurnalAvailability,
    EventQueue,
    TraceAvailability,
    deadline_outcome,
    lognormal_profiles,
    read_profile_trace,
    steps_within,
    task_times,
)


def three_clients() -> ClientProfiles:
    return ClientProfiles(
        speed=torch.tensor([100.0, 50.0, 10.0], dtype=torch.float64),
        uplink=torch.tensor([1000.0, 500.0, 100.0], dtype=torch.float64),
        downlink=torch.tensor([2000.0, 2000.0, 200.0], dtype=torch.float64),
        latency=torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64),
    )


def test_task_time_matches_hand_computation_on_three_clients():
    samples = torch.tensor([200, 100, 30])
    up = torch.tensor([4000, 4000, 400])
    down = torch.tensor([4000, 4000, 400])
    times = task_times(three_clients(), torch.tensor([0, 1, 2]), samples, up, down)
    # client 0: 200/100 + 4000/1000 + 4000/2000 + 0.5 = 8.5; client 1: 2 + 8 + 2 + 0 = 12;
    # client 2: 3 + 4 + 2 + 1 = 10
    assert times.tolist() == pytest.approx([8.5, 12.0, 10.0])


def test_deadline_drops_exactly_the_late_clients_and_waits_until_it():
    times = torch.tensor([8.5, 12.0, 10.0], dtype=torch.float64)
    kept, duration = deadline_outcome(times, deadline_s=11.0)
    assert kept.tolist() == [True, False, True] and duration == 11.0
    kept, duration = deadline_outcome(times, deadline_s=20.0)
    assert kept.all() and duration == 12.0
    kept, duration = deadline_outcome(times, wait_for=2)
    assert kept.tolist() == [True, False, True] and duration == 10.0
    kept, duration = deadline_outcome(times, deadline_s=9.0, wait_for=2)
    assert kept.tolist() == [True, False, False] and duration == 9.0


def test_steps_within_budget():
    assert steps_within(torch.tensor([1.0, 0.35, -1.0]), torch.tensor([100.0, 100.0, 100.0]), 10).tolist() == [10, 3, 0]


def test_lognormal_profiles_are_seeded_and_have_the_stated_median():
    a = lognormal_profiles(4001, seed=3, speed=200.0, speed_sigma=0.8, uplink=1e6, uplink_sigma=1.0,
                           downlink=5e6, downlink_sigma=1.0, latency=0.1)
    b = lognormal_profiles(4001, seed=3, speed=200.0, speed_sigma=0.8, uplink=1e6, uplink_sigma=1.0,
                           downlink=5e6, downlink_sigma=1.0, latency=0.1)
    assert torch.equal(a.speed, b.speed) and torch.equal(a.uplink, b.uplink)
    assert a.speed.median().item() == pytest.approx(200.0, rel=0.08)
    assert torch.log(a.speed).std().item() == pytest.approx(0.8, rel=0.05)
    # each quantity has its own stream: speeds do not repeat as uplinks
    assert not torch.allclose(torch.log(a.speed / 200.0), torch.log(a.uplink / 1e6))


def test_profile_trace_is_read_and_checked(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("client,speed,up,down,latency\n1,50,500,2000,0\n0,100,1000,2000,0.5\n2,10,100,200,1\n")
    p = read_profile_trace(path, 3)
    assert p.speed.tolist() == [100.0, 50.0, 10.0] and p.latency.tolist() == [0.5, 0.0, 1.0]
    path.write_text("client,speed,up,down\n0,100,1000,2000\n0,100,1000,2000\n")
    with pytest.raises(FedsimError, match="appears twice"):
        read_profile_trace(path, 3)
    path.write_text("client,speed,up,down\n0,100,1000,2000\n")
    with pytest.raises(FedsimError, match="no row for client"):
        read_profile_trace(path, 2)
    path.write_text("client,speed,up,down\n0,-1,1000,2000\n")
    with pytest.raises(FedsimError, match="speed"):
        read_profile_trace(path, 1)


def test_diurnal_availability_follows_the_phase():
    avail = DiurnalAvailability(num_clients=500, period_s=100.0, online_fraction=0.3, seed=1)
    clients = torch.arange(500)
    for t in (0.0, 17.0, 55.5):
        online = avail.online(clients, t)
        expected = torch.remainder(t / 100.0 + avail.phase, 1.0) < 0.3
        assert torch.equal(online, expected)
    assert avail.online(clients, 0.0).double().mean().item() == pytest.approx(0.3, abs=0.07)
    # online_through: online at the start and still online at the end of the task
    start, end = 10.0, torch.full((500,), 14.0, dtype=torch.float64)
    through = avail.online_through(clients, start, end)
    grid = torch.stack([avail.online(clients, start + s) for s in torch.linspace(0, 4, 81).tolist()])
    assert torch.equal(through, grid.all(dim=0))


def test_trace_availability(tmp_path):
    path = tmp_path / "on.csv"
    path.write_text("client,start,end\n0,0,10\n0,20,30\n2,5,25\n")
    avail = TraceAvailability.from_csv(path, 3)
    clients = torch.arange(3)
    assert avail.online(clients, 7.0).tolist() == [True, False, True]
    assert avail.online(clients, 15.0).tolist() == [False, False, True]
    assert avail.online_through(clients, 6.0, torch.tensor([9.0, 9.0, 26.0])).tolist() == [True, False, False]
    assert AlwaysAvailable().online(clients, 1e9).all()


def test_event_queue_is_deterministic_with_ties_in_insertion_order():
    q: EventQueue[str] = EventQueue()
    for t, item in [(2.0, "a"), (1.0, "b"), (2.0, "c"), (0.5, "d"), (1.0, "e")]:
        q.push(t, item)
    assert [q.pop()[1] for _ in range(len(q))] == ["d", "b", "e", "a", "c"]
    with pytest.raises(ValueError):
        q.push(math.inf, "x")


def test_staleness_weights_match_the_papers_formulas():
    from fedsim.systems.staleness import STALENESS_RULES, hinge_staleness, polynomial_staleness

    s = torch.arange(0, 12)
    assert torch.equal(STALENESS_RULES["constant"](s), torch.ones(12, dtype=torch.float64))
    for a in (0.5, 1.0, 2.0):
        assert polynomial_staleness(s, a).tolist() == pytest.approx([(k + 1) ** -a for k in range(12)])
    expected = [1.0 if k <= 4 else 1.0 / (10 * (k - 4) + 1) for k in range(12)]
    assert hinge_staleness(s, a=10, b=4).tolist() == pytest.approx(expected)
    assert STALENESS_RULES["sqrt"](s).tolist() == pytest.approx([1 / math.sqrt(1 + k) for k in range(12)])
    # every rule weighs a fresh update fully and never increases with staleness
    for rule in STALENESS_RULES.values():
        w = rule(s)
        assert w[0] == 1.0 and bool((w[1:] <= w[:-1]).all())
