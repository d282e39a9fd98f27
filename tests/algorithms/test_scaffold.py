"""SCAFFOLD (option II) on a heterogeneous quadratic, and the client state store it relies on."""

from __future__ import annotations

import resource

import torch

from fedsim.algorithms.federated import FedAvg, FullParticipation, Scaffold, UniformSampling
from fedsim.client import ClientStateStore, ClientTask, LocalSGD
from fedsim.runtimes import SerialRuntime
from tests.helpers import heterogeneous_quadratic


def train(algo, data, model, rounds: int):
    state = algo.init(torch.zeros(model.dim, dtype=torch.float64))
    runtime = SerialRuntime(model, data, seed=0)
    for rnd in range(rounds):
        algo.round(state, rnd, runtime)
    return state


def test_fedavg_is_biased_and_scaffold_finds_the_global_minimiser():
    data, model, w_star = heterogeneous_quadratic()
    task = ClientTask(LocalSGD(lr=0.2, batch_size=64, steps=10))  # full-batch local GD, 10 steps
    common = dict(num_clients=4, task=task, participation=FullParticipation(), weighting="uniform")
    fedavg = train(FedAvg(**common), data, model, 150).params
    scaffold = train(Scaffold(**common), data, model, 150).params
    assert (fedavg - w_star).norm() > 0.1  # client drift: FedAvg's fixed point is not w*
    assert (scaffold - w_star).norm() < 1e-6
    # A FedAvg fixed point: one more round does not move it.
    again = train(FedAvg(**common), data, model, 151).params
    assert (again - fedavg).norm() < 1e-8


def test_scaffold_with_partial_participation_and_disk_state_converges(tmp_path):
    data, model, w_star = heterogeneous_quadratic(num_clients=6)
    task = ClientTask(LocalSGD(lr=0.2, batch_size=64, steps=5))
    common = dict(num_clients=6, task=task, participation=UniformSampling(3), weighting="uniform", seed=1)
    memory = Scaffold(**common)
    disk = Scaffold(client_states=ClientStateStore(tmp_path, num_clients=6), **common)
    s_mem, s_disk = train(memory, data, model, 300), train(disk, data, model, 300)
    assert torch.equal(s_mem.params, s_disk.params)
    assert (s_mem.params - w_star).norm() < 1e-4
    # Server control variate = mean of the client ones (Algorithm 1 keeps c = (1/N) sum_i c_i).
    c_i = torch.stack([disk.client_states.get(k)["c_i"] for k in range(6)])
    torch.testing.assert_close(s_disk.extras["c"], c_i.mean(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c_i.bin"]


def test_state_store_keeps_unsampled_clients_and_spills_rows(tmp_path):
    store = ClientStateStore(tmp_path, num_clients=1000)
    store.put(3, {"c_i": torch.arange(5.0), "residual": torch.ones(2, 2, dtype=torch.float64)})
    store.put(999, {"c_i": -torch.arange(5.0)})
    assert len(store) == 2 and store.get(0) == {}
    assert torch.equal(store.get(3)["c_i"], torch.arange(5.0))
    assert torch.equal(store.get(3)["residual"], torch.ones(2, 2, dtype=torch.float64))
    assert torch.equal(store.get(999)["c_i"], -torch.arange(5.0))
    restored = ClientStateStore()
    restored.load_state_dict(store.state_dict())
    assert torch.equal(restored.get(999)["c_i"], -torch.arange(5.0))


def test_spilled_store_checkpoint_is_a_streamed_snapshot(tmp_path):
    """state_dict of an on-disk store copies its files (no tensors in the dict); restoring brings
    back exactly the snapshotted rows, in place or into another store."""
    store = ClientStateStore(tmp_path / "live", num_clients=50)
    for k in (1, 7, 49):
        store.put(k, {"c_i": torch.full((4,), float(k)), "r": torch.ones(2, dtype=torch.float64) * k})
    snap = store.state_dict()
    assert not any(isinstance(v, torch.Tensor) for v in _leaves(snap))
    store.put(7, {"c_i": torch.zeros(4), "r": torch.zeros(2, dtype=torch.float64)})
    store.put(3, {"c_i": torch.ones(4), "r": torch.ones(2, dtype=torch.float64)})
    store.state_dict(), store.state_dict()  # later snapshots: only the two newest are kept
    assert sorted(p.name for p in (tmp_path / "live").iterdir() if p.is_dir()) == ["snapshot-2", "snapshot-3"]
    other = ClientStateStore(tmp_path / "other", num_clients=50)
    memory = ClientStateStore()
    snap = store.state_dict()  # snapshot-4: clients 1, 3, 7 (zeros), 49
    for target in (store, other, memory):
        target.load_state_dict(snap)
        assert len(target) == 4 and target.get(0) == {}
        assert torch.equal(target.get(7)["c_i"], torch.zeros(4)) and torch.equal(target.get(49)["r"], torch.full((2,), 49.0, dtype=torch.float64))


def _leaves(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


def test_spilled_store_holds_many_large_states_in_little_memory(tmp_path):
    """500 clients x 100k floats is 200 MB of state; the process must not hold it."""
    dim, clients = 100_000, 500
    store = ClientStateStore(tmp_path, num_clients=clients)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for k in range(clients):
        store.put(k, {"c_i": torch.full((dim,), float(k))})
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 40, grown_mb
    assert store.get(417)["c_i"][12345].item() == 417.0
    assert (tmp_path / "c_i.bin").stat().st_size == clients * dim * 4


def unequal_quadratic(sizes=(2, 3, 5, 8, 13, 40), dim=5, seed=0):
    """Clients of unequal sizes with different curvatures and minimisers (f_k = mean over its rows).

    Returns the data, the model, the minimiser of ``sum_k (n_k / n) f_k`` (sample-weighted) and
    that of ``(1/N) sum_k f_k`` (uniform), both in closed form (coordinate-wise quadratics).
    """
    from fedsim.data.federated import FederatedData
    from tests.helpers import QuadraticModel

    gen = torch.Generator().manual_seed(seed)
    k, n = len(sizes), sum(sizes)
    owner = torch.repeat_interleave(torch.arange(k), torch.tensor(sizes))
    scale = torch.linspace(0.2, 2.0, k, dtype=torch.float64)[owner][:, None]
    a = scale * (0.5 + torch.rand(n, dim, generator=gen, dtype=torch.float64))
    b = 3.0 * torch.randn(k, dim, generator=gen, dtype=torch.float64)[owner] + 0.1 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    bounds = [0, *torch.tensor(sizes).cumsum(0).tolist()]
    idx = [torch.arange(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    x = torch.cat([a, b], 1)
    y = torch.zeros(n, dtype=torch.long)
    w_samples = (a * b).sum(0) / a.sum(0)  # sum_k (n_k/n) mean_{i in k} = (1/n) sum over all rows
    per = torch.tensor([1.0 / sizes[int(o)] for o in owner], dtype=torch.float64)[:, None]
    w_uniform = (per * a * b).sum(0) / (per * a).sum(0)
    return FederatedData(x, y, idx, x[:1], y[:1]), QuadraticModel(dim), w_samples, w_uniform


class UnweightedControlScaffold(Scaffold):
    """The pre-fix rule: c <- c + (1/N) sum_S Delta c_i whatever the weighting."""

    def control_weights(self):
        return torch.full((self.num_clients,), 1.0 / self.num_clients, dtype=torch.float64)


def test_sample_weighted_scaffold_converges_to_the_weighted_minimiser():
    data, model, w_samples, w_uniform = unequal_quadratic()
    assert (w_samples - w_uniform).norm() > 0.3  # the two objectives really differ
    task = ClientTask(LocalSGD(lr=0.1, batch_size=64, steps=10))
    for participation, rounds in ((FullParticipation(), 60), (UniformSampling(3), 150)):
        common = dict(num_clients=6, task=task, participation=participation, weighting="samples", seed=2,
                      client_sizes=data.client_sizes())
        fixed = Scaffold(**common)
        state = train(fixed, data, model, rounds)
        assert (state.params - w_samples).norm() < 1e-8, participation
        # c stays the p-weighted mean of the client variates (Karimireddy et al. eq. (5), weighted).
        c_i = torch.stack([fixed.client_states.get(k)["c_i"] for k in range(6)])
        p = torch.tensor([2, 3, 5, 8, 13, 40], dtype=torch.float64) / 71
        torch.testing.assert_close(state.extras["c"], p @ c_i)
        old = train(UnweightedControlScaffold(**common), data, model, rounds).params
        assert (old - w_samples).norm() > 1.0  # the old rule fails this test (4.77 away) ...
        assert (old - w_uniform).norm() < 1e-6  # ... by converging to the uniform minimiser
