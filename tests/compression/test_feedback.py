"""Error feedback (EF-SGD) and EF21 invariants (spec section 5.10), for every compressor."""

from __future__ import annotations

import pytest
import torch

from fedsim.compression import EF21, ErrorFeedback, Identity, TopK, build_compressor, compressor_names
from fedsim.errors import FedsimError
from fedsim.seeding import torch_generator

D = 24
PARAMS = {
    "identity": {},
    "top_k": {"k": 3},
    "random_k": {"ratio": 0.25},
    "dropout": {"p": 0.4},
    "qsgd": {"levels": 2},
    "sign": {},
    "powersgd": {"rank": 1, "shapes": [(4, 5), (4,)]},
    "sparsify_quantize": {"levels": 2, "k": 6},
}


# On R^24 with PARAMS: what each operator declares decides what error feedback does with it.
CONTRACTIVE = {"identity", "top_k", "sign"}           # delta > 0: used as is
RESCALED = {"random_k", "dropout", "qsgd"}            # unbiased, omega >= 1: used as C / (1 + omega)
REFUSED = {"powersgd", "sparsify_quantize"}           # biased, no delta > 0: refused


def test_every_registered_compressor_is_covered() -> None:
    assert sorted(PARAMS) == compressor_names() == sorted(CONTRACTIVE | RESCALED | REFUSED)


def _feedback_ok(name: str) -> None:
    if name in REFUSED:
        pytest.skip(f"{name} is refused by error feedback on R^{D} (see test_declared_guarantee_decides_what_feedback_does)")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_ef_loses_nothing_sent_plus_residual_equals_inputs(name: str) -> None:
    _feedback_ok(name)
    ef = build_compressor(name, feedback="ef", **PARAMS[name])
    state: dict[str, torch.Tensor] = {}
    inputs = torch.randn(30, D, generator=torch_generator(0, "ef-test"), dtype=torch.float64)
    sent = torch.zeros(D, dtype=torch.float64)
    for t, x in enumerate(inputs):
        msg = ef.compress(x, torch_generator(0, "compression", t), state)
        state = msg.state
        sent += msg.value
    assert torch.allclose(sent + state["ef_residual"], inputs.sum(0), atol=1e-10)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_ef21_estimate_is_the_sum_of_sent_increments(name: str) -> None:
    _feedback_ok(name)
    ef21 = build_compressor(name, feedback="ef21", **PARAMS[name])
    inner = build_compressor(name, **PARAMS[name])
    g = inner.guarantee(D)
    scale = 1.0 / (1.0 + g.error) if name in RESCALED else 1.0
    state: dict[str, torch.Tensor] = {}
    increments = torch.zeros(D, dtype=torch.float64)
    for t, x in enumerate(torch.randn(10, D, generator=torch_generator(1, "ef-test"), dtype=torch.float64)):
        before = state.get("ef21_estimate", torch.zeros(D, dtype=torch.float64))
        msg = ef21.compress(x, torch_generator(0, "compression", t), state)
        # The increment is what the inner operator sends for x - g, with the same stream (times
        # 1/(1 + omega) for an unbiased, non-contractive operator).
        direct = inner.compress(x - before, torch_generator(0, "compression", t), state)
        assert msg.bits == direct.bits
        assert torch.allclose(msg.value - before, scale * direct.value, atol=1e-12)
        increments += msg.value - before
        state = msg.state
    assert torch.allclose(increments, state["ef21_estimate"], atol=1e-10)


def test_ef21_estimate_contracts_to_a_fixed_input() -> None:
    x = torch.randn(D, generator=torch_generator(2, "ef-test"), dtype=torch.float64)
    ef21, state, delta = EF21(TopK(k=3)), {}, 3 / D
    for t in range(1, 20):
        state = ef21.compress(x, torch_generator(0, "c", t), state).state
        assert float(((state["ef21_estimate"] - x) ** 2).sum()) <= (1 - delta) ** t * float((x**2).sum()) * (1 + 1e-9)


def _least_squares_sgd(compressor, steps: int = 40, lr: float = 0.05):
    """SGD on 0.5 ||A w - b||^2 with minibatches, the step taken along the (compressed) gradient."""
    gen = torch_generator(0, "ls-data")
    a, b = torch.randn(64, D, generator=gen), torch.randn(64, generator=gen)
    w, state, gsum, trace = torch.zeros(D), {}, torch.zeros(D), []
    for t in range(steps):
        rows = torch.randint(0, 64, (8,), generator=torch_generator(0, "batches", t))
        g = a[rows].T @ (a[rows] @ w - b[rows]) / 8
        gsum += g
        if compressor is None:
            w = w - lr * g
        else:
            msg = compressor.compress(g, torch_generator(0, "compression", t), state)
            state = msg.state
            w = w - lr * msg.value
            trace.append((w.clone(), state["ef_residual"].clone(), gsum.clone()))
    return w, trace


def test_ef_with_identity_is_plain_sgd_bit_for_bit() -> None:
    plain, _ = _least_squares_sgd(None)
    ef, trace = _least_squares_sgd(ErrorFeedback(Identity()))
    assert torch.equal(plain, ef)
    assert all(torch.equal(e, torch.zeros(D)) for _, e, _ in trace)


def test_ef_virtual_sequence_is_uncompressed_sgd_and_residual_stays_bounded() -> None:
    lr = 0.05
    _, trace = _least_squares_sgd(ErrorFeedback(TopK(k=2)), steps=200, lr=lr)
    for w, e, gsum in trace:  # spec (a): w_t - lr e_t = w_1 - lr sum_s g_s
        assert torch.allclose(w - lr * e, -lr * gsum, atol=1e-4)
    norms = torch.stack([e.norm() for _, e, _ in trace])
    assert float(norms[100:].max()) <= 2 * float(norms[:100].max())


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("feedback", ["ef", "ef21"])
def test_declared_guarantee_decides_what_feedback_does(name: str, feedback: str) -> None:
    inner = build_compressor(name, **PARAMS[name])
    g = inner.guarantee(D)
    if name in REFUSED:
        assert g.delta is None and not g.unbiased
        with pytest.raises(FedsimError, match=type(inner).__name__) as err:
            build_compressor(name, feedback=feedback, **PARAMS[name]).compress(torch.randn(D), torch_generator(0, "c"))
        assert "\n" not in str(err.value) and "feedback: none" in str(err.value)
        return
    wrapped = build_compressor(name, feedback=feedback, **PARAMS[name]).guarantee(D)
    assert wrapped.delta is not None and wrapped.delta > 0  # what EF applies is always a contraction
    if name in RESCALED:
        assert g.unbiased and g.delta is None and wrapped.delta == pytest.approx(1 / (1 + g.error))


def test_rescaled_operator_is_a_contraction_in_expectation() -> None:
    """E||C(x)/(1 + omega) - x||^2 <= (1 - 1/(1 + omega)) ||x||^2 (spec section 5.9), Monte Carlo."""
    x = torch.randn(D, generator=torch_generator(3, "ef-test"), dtype=torch.float64)
    for name in sorted(RESCALED):
        inner = build_compressor(name, **PARAMS[name])
        s = 1 / (1 + inner.guarantee(D).error)
        err = torch.stack([((s * inner.compress(x, torch_generator(0, "mc", t)).value - x) ** 2).sum()
                           for t in range(4000)]).mean()
        assert float(err) <= (1 - s) * float((x**2).sum()) * 1.05, name


def test_ef_residual_stays_bounded_with_scaled_random_k() -> None:
    """Unscaled-by-(1 + omega) EF on scaled random-k blows up (issue #14: 1.6e19 after 200 steps)."""
    x = torch.randn(D, generator=torch_generator(4, "ef-test"), dtype=torch.float64)
    inner = build_compressor("random_k", ratio=0.25)
    ef, naive, e = build_compressor("random_k", feedback="ef", ratio=0.25), {}, torch.zeros(D, dtype=torch.float64)
    state: dict[str, torch.Tensor] = {}
    for t in range(200):
        state = ef.compress(x, torch_generator(0, "c", t), state).state
        corrected = x + e  # the old rule: e <- (x + e) - C(x + e)
        e = corrected - inner.compress(corrected, torch_generator(0, "c", t)).value
    assert float(state["ef_residual"].norm()) < 20 * float(x.norm())
    assert float(e.norm()) > 1e6 * float(x.norm())
