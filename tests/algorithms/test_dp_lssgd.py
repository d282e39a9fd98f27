"""DP-SGD / DP-LSSGD: per-sample gradients, the noiseless full-batch limit, sample-level ledger."""

import pytest
import torch

from fedsim.algorithms.dp_lssgd import per_sample_grads
from fedsim.experiment import Experiment, resolve_config
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.privacy import compute_epsilon
from fedsim.seeding import torch_generator
from tests.helpers import OpaqueRuntime, small_config

PARTS = [list(range(0, 60)), list(range(60, 100))]  # 100 real MNIST examples on 2 clients


def experiment(tmp_path, privacy, **algorithm):
    cfg = small_config(tmp_path)
    cfg["data"]["num_clients"] = 2
    cfg["algorithm"] = {"kind": "dp_lssgd", "rounds": 2, "batch_size": 20, "lr": 0.5, **algorithm}
    cfg["privacy"] = {"clip_norm": 1.0, **privacy}
    return Experiment(resolve_config(cfg), partition=PARTS)


def test_per_sample_grads_match_one_example_at_a_time():
    model = FunctionalModel(build_model("mlp", seed=0, hidden=[16]))
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 784, generator=gen), torch.randint(0, 10, (6,), generator=gen)
    w = model.initial_params()
    batched = per_sample_grads(model, w, x, y)
    for i in range(6):
        torch.testing.assert_close(batched[i], model.loss_and_grad(w, x[i : i + 1], y[i : i + 1])[1])


def test_noiseless_unclipped_full_lot_is_a_full_gradient_step(tmp_path):
    exp = experiment(tmp_path, {"noise_multiplier": 0.0, "clip_norm": 1e6}, batch_size=100)
    state = exp.algorithm.init(exp.initial_params)
    exp.algorithm.round(state, 0, exp.runtime)
    x, y = exp.data.x_train[:100], exp.data.y_train[:100]
    _, g = exp.model.loss_and_grad(exp.initial_params, x, y)
    torch.testing.assert_close(state.params, exp.initial_params - 0.5 * g, rtol=1e-4, atol=1e-6)


def test_smoothing_is_free_and_the_ledger_is_sample_level(tmp_path):
    eps = []
    for sigma in (0.0, 2.0):
        exp = experiment(tmp_path / str(sigma), {"noise_multiplier": 1.2, "delta": 1e-3}, ls_sigma=sigma)
        state = exp.algorithm.init(exp.initial_params)
        rows = [exp.algorithm.round(state, r, exp.runtime).extra["epsilon"] for r in range(2)]
        eps.append(rows)
        ledger = exp.algorithm.summary()["privacy"]
        assert ledger["unit"] == "sample" and ledger["exact"] and ledger["sample_rate"] == pytest.approx(0.2)
    assert eps[0] == eps[1]
    assert eps[0][-1] == compute_epsilon(noise_multiplier=1.2, sample_rate=0.2, steps=2, delta=1e-3)


def test_fixed_size_lots_are_exactly_the_batch_and_accounted_without_replacement(tmp_path):
    exp = experiment(tmp_path, {"noise_multiplier": 1.2, "delta": 1e-3}, sampling="uniform")
    state = exp.algorithm.init(exp.initial_params)
    lots = [exp.algorithm.round(state, r, exp.runtime).extra["lot_size"] for r in range(2)]
    assert lots == [20.0, 20.0]
    ledger = exp.algorithm.summary()["privacy"]
    assert (ledger["sampling"], ledger["adjacency"], ledger["cohort_size"], ledger["exact"]) == (
        "uniform", "replace-one", 20, False)
    assert ledger["epsilon"] == compute_epsilon(noise_multiplier=1.2, sample_rate=0.2, steps=2, delta=1e-3,
                                                sampling="uniform", population=100)


@pytest.mark.parametrize("sampling", ["poisson", "uniform"])
def test_clients_send_their_lots_clipped_gradient_sums_through_the_runtime(tmp_path, sampling):
    """The round is client work behind ``run_cohort``: the same step through an opaque runtime,
    and the step equals one computed here from the lot drawn as the paper says (per client with
    probability q from its "dp_lot" stream, or round(q n) of all n from the round's stream)."""
    exp = experiment(tmp_path, {"noise_multiplier": 0.0, "clip_norm": 0.05}, batch_size=30, sampling=sampling)
    state, opaque = exp.algorithm.init(exp.initial_params), exp.algorithm.init(exp.initial_params)
    metrics = exp.algorithm.round(state, 0, exp.runtime)
    exp.algorithm.round(opaque, 0, OpaqueRuntime(exp.runtime))
    assert torch.equal(state.params, opaque.params)
    if sampling == "uniform":
        chosen = torch.zeros(100, dtype=torch.bool)
        chosen[torch.randperm(100, generator=torch_generator(0, "dp_lot", 0))[:30]] = True
        masks = [chosen[rows] for rows in PARTS]
    else:
        masks = [torch.rand(len(rows), generator=torch_generator(0, "dp_lot", 0, client)) < 0.3
                 for client, rows in enumerate(PARTS)]
    total = torch.zeros_like(exp.initial_params)
    for rows, members in zip(PARTS, masks):
        x, y = exp.data.x_train[rows][members], exp.data.y_train[rows][members]
        g = per_sample_grads(exp.model, exp.initial_params, x, y)
        total += (g * (0.05 / torch.linalg.vector_norm(g, dim=1, keepdim=True)).clamp(max=1.0)).sum(0)
    assert metrics.extra["lot_size"] == sum(int(m.sum()) for m in masks) and metrics.clients == 2
    torch.testing.assert_close(state.params, exp.initial_params - 0.5 * total / 30, rtol=1e-4, atol=1e-7)
