"""Runtimes agree: serial and vectorized training give the same updates, losses and run folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedsim.experiment import run
from fedsim.client import ClientContext, ClientTask, LocalSGD, minibatch_schedule
from fedsim.config.schema import ExperimentConfig
from fedsim.data.federated import build_federated_data
from fedsim.models.functional import FunctionalModel, cross_entropy_per_sample, unfold_conv2d
from fedsim.models.zoo import build_model
from fedsim.output import read_metrics
from fedsim.runtimes import SerialRuntime, VectorizedRuntime
from fedsim.runtimes.vectorized import cohort_schedule
from fedsim.seeding import derive_seed, derive_seeds
from tests.helpers import assert_cohorts_close, assert_rows_close, small_config


@pytest.fixture(scope="module")
def skewed():
    """MNIST over 400 clients with Dirichlet(0.3) label skew: client sizes differ by an order of magnitude."""
    return build_federated_data(dataset="mnist", num_clients=400, partition="dirichlet", partition_params={"alpha": 0.3}, seed=3)


def test_schedule_uses_every_sample_once_per_epoch(skewed):
    local = LocalSGD(lr=0.1, batch_size=32, epochs=2)
    cohort = [0, 7, 12, 31, 49]
    sched = cohort_schedule(ClientTask(local), skewed, cohort, seed=0, rnd=4)
    sizes = skewed.client_sizes()[cohort]
    assert len(set(sizes.tolist())) > 1, "the test needs unequal client sizes"
    for c, client in enumerate(cohort):
        used = sched.index[c][sched.valid[c]]
        assert len(used) == 2 * sizes[c]
        counts = torch.bincount(used, minlength=len(skewed.y_train))
        own = skewed.client_indices[client]
        assert torch.all(counts[own] == 2) and counts.sum() == 2 * len(own)
        assert sched.steps[c] == 2 * -(-int(sizes[c]) // 32)
        # Steps past a client's schedule hold no samples.
        assert not sched.valid[c, sched.steps[c]:].any()


@pytest.mark.parametrize("local", [LocalSGD(lr=0.1, batch_size=32, epochs=2), LocalSGD(lr=0.1, batch_size=16, steps=7)])
def test_cohort_schedule_is_each_clients_minibatch_schedule(skewed, local):
    """The batched schedule is, row by row, what the serial runtime draws from each client's stream."""
    cohort = [0, 7, 12, 31, 49, 399]
    sched = cohort_schedule(ClientTask(local), skewed, cohort, seed=2, rnd=4)
    for c, client in enumerate(cohort):
        own = skewed.client_indices[client]
        batches = minibatch_schedule(len(own), local, ClientContext(2, 4, client).generator("batches"))
        assert sched.steps[c] == len(batches)
        for s, idx in enumerate(batches):
            assert torch.equal(sched.index[c, s][sched.valid[c, s]], own[idx])


def test_batched_seed_derivation_equals_derive_seed():
    clients = np.arange(0, 5000, 13)
    batched = derive_seeds(7, "batches", 3, clients)
    assert batched.tolist() == [derive_seed(7, "batches", 3, int(c)) for c in clients]
    assert int(derive_seeds(2**40 + 1, "sampling", -5)) == derive_seed(2**40 + 1, "sampling", -5)


@pytest.mark.parametrize("kind,conv", [("logistic", "auto"), ("mlp", "auto"), ("cnn", "vmap"), ("cnn", "unfold"), ("cnn", "auto")])
def test_vectorized_equals_serial_per_client(kind, conv, skewed):
    model = FunctionalModel(build_model(kind, seed=1, hidden=[32], channels=(4, 8)))
    w0 = model.initial_params()
    task = ClientTask(LocalSGD(lr=0.05, batch_size=16, epochs=1, weight_decay=1e-3, prox_mu=0.1))
    cohort = [2, 5, 11, 40] if kind == "cnn" else [0, 3, 8, 17, 22, 30, 41, 49]
    serial = SerialRuntime(model, skewed, seed=5).run_cohort(task, w0, cohort, rnd=2)
    vector = VectorizedRuntime(model, skewed, seed=5, max_clients=3, conv=conv).run_cohort(task, w0, cohort, rnd=2)
    assert_cohorts_close(serial, vector)


@pytest.mark.parametrize("stride,padding,dilation", [((1, 1), (2, 2), (1, 1)), ((2, 1), (0, 1), (1, 2))])
def test_unfold_convolution_equals_conv2d(stride, padding, dilation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 13, 11, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 5, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    for b in (bias, None):
        expected = torch.nn.functional.conv2d(x, weight, b, stride=stride, padding=padding, dilation=dilation)
        torch.testing.assert_close(unfold_conv2d(x, weight, b, stride, padding, dilation), expected, rtol=1e-12, atol=1e-12)


def test_vmap_layout_of_linear_layers_is_the_same_function():
    """The vectorized runtime's copy (VmapLinear) equals the module, per client under vmap and in its gradients."""
    model = FunctionalModel(build_model("mlp", seed=0, hidden=[7]))
    batched = model.for_vmap()
    g = torch.Generator().manual_seed(0)
    w = model.initial_params() + 0.1 * torch.randn(3, model.dim, generator=g)
    x = torch.randn(3, 5, 784, generator=g)
    tensors = [{n: t.detach().requires_grad_(True) for n, t in model.spec.unflatten(row).items()} for row in w]
    stacked = {n: torch.stack([t[n] for t in tensors]).detach().requires_grad_(True) for n in tensors[0]}
    out = torch.func.vmap(lambda p, xc: torch.func.functional_call(batched, p, (xc,)))(stacked, x)
    expected = torch.stack([torch.func.functional_call(model.module, t, (x[i],)) for i, t in enumerate(tensors)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out.square().sum(), tuple(stacked.values()))
    for (name, g_b) in zip(stacked, grads):
        g_ref = torch.stack(torch.autograd.grad(expected.square().sum(), tuple(t[name] for t in tensors), retain_graph=True))
        torch.testing.assert_close(g_b, g_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("classes", [2, 10, 16, 80])
def test_per_sample_cross_entropy_equals_torch(classes):
    g = torch.Generator().manual_seed(classes)
    logits = (5 * torch.randn(300, classes, generator=g, dtype=torch.float64)).requires_grad_(True)
    y = torch.randint(0, classes, (300,), generator=g)
    ours = cross_entropy_per_sample(logits, y)
    ref = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    (w,) = torch.autograd.grad((ours * torch.arange(300.0, dtype=torch.float64)).sum(), logits)
    (w_ref,) = torch.autograd.grad((ref * torch.arange(300.0, dtype=torch.float64)).sum(), logits)
    torch.testing.assert_close(w, w_ref, rtol=1e-10, atol=1e-10)


def test_vectorized_per_client_start_points(skewed):
    """Decentralized nodes: one start row per client, fixed step counts."""
    model = FunctionalModel(build_model("logistic", seed=0))
    cohort = list(range(6))
    starts = model.initial_params() + 0.01 * torch.randn(len(cohort), model.dim, generator=torch.Generator().manual_seed(0))
    task = ClientTask(LocalSGD(lr=0.1, batch_size=8, steps=5))
    serial = SerialRuntime(model, skewed, seed=0).run_cohort(task, starts, cohort, rnd=1)
    vector = VectorizedRuntime(model, skewed, seed=0).run_cohort(task, starts, cohort, rnd=1)
    assert_cohorts_close(serial, vector)


# One config patch per algorithm family (top-level sections, merged into small_config's; an
# algorithm with a "kind" outside the FedAvg family replaces the algorithm section).
RUN_CASES = {
    "fedavg": {},
    "fedprox": {"algorithm": {"kind": "fedprox", "mu": 0.1}},
    "scaffold": {"algorithm": {"kind": "scaffold"}},
    "dp_fed_ls_every_step": {
        "algorithm": {"kind": "dp_fed_ls", "weighting": "uniform"},
        "privacy": {"noise_multiplier": 0.5, "clip_norm": 0.5, "clip_mode": "every_step"},
    },
    "topk_ef": {"compression": {"uplink": {"kind": "top_k", "ratio": 0.01, "feedback": "ef"}}},
    "qsgd_up_and_down": {"compression": {"uplink": {"kind": "qsgd", "levels": 15}, "downlink": {"kind": "qsgd", "levels": 255}}},
    "dp_lssgd": {
        "data": {"num_clients": 8},
        "algorithm": {"kind": "dp_lssgd", "rounds": 2, "batch_size": 64, "lr": 0.5, "ls_sigma": 1.0},
        "privacy": {"noise_multiplier": 1.0, "clip_norm": 1.0},
    },
    "dp_lssgd_fixed_lots": {
        "data": {"num_clients": 8},
        "algorithm": {"kind": "dp_lssgd", "rounds": 2, "batch_size": 64, "lr": 0.5, "sampling": "uniform"},
        "privacy": {"noise_multiplier": 1.0, "clip_norm": 1.0},
    },
    "dpsgd": {
        "data": {"num_clients": 8},
        "algorithm": {"kind": "dpsgd", "rounds": 2, "local_steps": 3, "batch_size": 16, "lr": 0.05},
        "topology": {"spec": "ring"},
    },
}


def case_config(tmp_path, case: str) -> dict:
    cfg = small_config(tmp_path)
    for section, patch in RUN_CASES[case].items():
        replace = section == "algorithm" and "clients_per_round" not in type(
            ExperimentConfig.model_validate({"algorithm": {"kind": patch["kind"]}}).algorithm
        ).model_fields
        cfg[section] = dict(patch) if replace or section not in cfg else {**cfg[section], **patch}
    return cfg


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run_folders_equal_serial_vectorized(tmp_path, case):
    """Whole runs: metrics.jsonl agrees within 1e-5."""
    cfg = case_config(tmp_path, case)
    serial = run(cfg, out=tmp_path / "serial")
    vector = run(cfg, overrides=["runtime.kind=vectorized"], out=tmp_path / "vectorized")
    assert_rows_close(read_metrics(serial.run_dir), read_metrics(vector.run_dir))


class _Corrected(ClientTask):
    """SCAFFOLD-shaped client work: a per-client gradient correction read from state, and a
    transform that keeps a residual in state (as error feedback does)."""

    def correction(self, state, broadcast):
        return broadcast["c"] - state["c_i"]


def _keep_half(update, state, generator):
    noise = torch.randn(update.shape, generator=generator).to(update)
    state["residual"] = update / 2 + 1e-3 * noise
    return update / 2, 16 * update.numel()


def test_vectorized_applies_correction_and_transforms_per_client(skewed):
    model = FunctionalModel(build_model("logistic", seed=0))
    cohort = [1, 4, 9]
    g = torch.Generator().manual_seed(1)
    states = [{"c_i": 0.01 * torch.randn(model.dim, generator=g)} for _ in cohort]
    broadcast = {"c": 0.01 * torch.randn(model.dim, generator=g)}
    task = _Corrected(LocalSGD(lr=0.1, batch_size=32), transforms=(_keep_half,))
    args = (task, model.initial_params(), cohort, 0)
    serial = SerialRuntime(model, skewed, seed=0).run_cohort(*args, [dict(s) for s in states], broadcast)
    vector = VectorizedRuntime(model, skewed, seed=0).run_cohort(*args, [dict(s) for s in states], broadcast)
    assert_cohorts_close(serial, vector)
    assert all("residual" in s for s in vector.states) and vector.bits_up.tolist() == [16 * model.dim] * 3
