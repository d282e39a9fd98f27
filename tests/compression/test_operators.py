"""Properties of the compression operators (spec section 5): unbiasedness, exact variance
constants, contraction, the slides' worked examples, honest bit counts and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from fedsim.compression import (
    QSGD,
    Identity,
    PowerSGD,
    RandomDropout,
    RandomK,
    ScaledSign,
    SparsifyQuantize,
    TopK,
    build_compressor,
    compress_rows,
    compressor_names,
    qsgd_variance,
)
from fedsim.errors import FedsimError
from fedsim.seeding import torch_generator


def _gen(*coords: int) -> torch.Generator:
    return torch_generator(0, "test-compression", *coords)


def _x(d: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(d, generator=_gen(seed), dtype=torch.float64)


def _samples(compressor, x: torch.Tensor, n: int) -> torch.Tensor:
    gen = _gen(99)
    return torch.stack([compressor.compress(x, gen).value for _ in range(n)])


def _bernstein(var: torch.Tensor, bound: torch.Tensor, n: int, alpha: float) -> torch.Tensor:
    """Half-width t with P(|mean_n - mu| >= t) <= alpha, for i.i.d. Y with Var Y = var, |Y - EY| <= bound.

    Solves Bernstein's inequality ``2 exp(-n t^2 / (2 var + 2 bound t / 3)) = alpha`` for t.
    """
    log = math.log(2.0 / alpha)
    b = bound * log / 3.0
    return (b + torch.sqrt(b**2 + 2.0 * n * var * log)) / n


# ---------------------------------------------------------------- unbiasedness and exact variance

D, K, P, S, N = 8, 2, 0.25, 2, 10000
ALPHA = 1e-6 / D  # union bound over the D coordinates


def _coordinate_moments(name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-coordinate variance of C(x)_i and a bound on |C(x)_i - x_i|."""
    if name == "random_k":
        return x**2 * (D / K - 1), x.abs() * max(D / K - 1, 1)
    if name == "dropout":
        return x**2 * (1 / P - 1), x.abs() * max(1 / P - 1, 1)
    norm = x.norm()
    frac = S * x.abs() / norm - torch.floor(S * x.abs() / norm)
    return (norm / S) ** 2 * frac * (1 - frac), torch.full_like(x, float(norm / S))


UNBIASED = {"random_k": RandomK(k=K), "dropout": RandomDropout(P), "qsgd": QSGD(S)}


@pytest.mark.parametrize("name", list(UNBIASED))
def test_monte_carlo_mean_is_x_within_bernstein_tolerance(name: str) -> None:
    x = _x(D)
    mean = _samples(UNBIASED[name], x, N).mean(0)
    var, bound = _coordinate_moments(name, x)
    tol = _bernstein(var, bound, N, ALPHA)
    assert torch.all((mean - x).abs() <= tol), (mean - x, tol)


@pytest.mark.parametrize("compressor,scale", [(RandomK(k=K, scaled=False), K / D), (RandomDropout(P, scaled=False), P)])
def test_unscaled_versions_have_mean_scaled_by_k_over_d_or_p(compressor, scale: float) -> None:
    x = _x(D)
    mean = _samples(compressor, x, N).mean(0)
    # The same tolerance as the unbiased test, for Y = C(x)/scale (variance of the scaled operator).
    var = x**2 * (1 / scale - 1)
    tol = _bernstein(var, x.abs() * max(1 / scale - 1, 1), N, ALPHA) * scale
    assert torch.all((mean - scale * x).abs() <= tol)
    assert torch.all((mean - x).abs() > tol)  # the unbiasedness test above would reject it


@pytest.mark.parametrize(
    "name,omega", [("random_k", D / K - 1), ("dropout", 1 / P - 1), ("qsgd", None)]
)
def test_mean_squared_error_matches_the_exact_variance_constant(name: str, omega: float | None) -> None:
    x = _x(D, seed=3)
    sq = ((_samples(UNBIASED[name], x, N) - x) ** 2).sum(1)
    exact = omega * float(x.norm() ** 2) if omega is not None else qsgd_variance(x, S)
    # Hoeffding on the squared error, which lies in [0, max_sq] for each operator.
    max_sq = float(x.norm() ** 2) * (max(omega, 1.0) ** 2 + 1.0 if omega is not None else D / S**2)
    tol = max_sq * math.sqrt(math.log(2 / 1e-6) / (2 * N))
    assert abs(float(sq.mean()) - exact) <= tol
    if omega is not None:
        assert UNBIASED[name].guarantee(D).omega == pytest.approx(omega)


def test_qsgd_exact_variance_is_within_the_lemma_bound_for_many_vectors() -> None:
    gen = _gen(5)
    for d in (1, 2, 10, 100, 1000):
        for s in (1, 2, 4, 16):
            bound = min(d / s**2, math.sqrt(d) / s)
            assert QSGD(s).guarantee(d).omega == pytest.approx(bound)
            for x in (torch.randn(d, generator=gen, dtype=torch.float64), torch.ones(d, dtype=torch.float64)):
                assert qsgd_variance(x, s) <= bound * float(x.norm() ** 2) * (1 + 1e-12)


def test_qsgd_of_zero_is_zero_and_values_lie_on_the_grid() -> None:
    q = QSGD(3)
    assert torch.equal(q.compress(torch.zeros(5), _gen(1)).value, torch.zeros(5))
    x = _x(50).float()
    levels = q.compress(x, _gen(2)).value.abs() / x.norm() * 3
    assert torch.allclose(levels, levels.round(), atol=1e-5)
    assert torch.all(levels.round() <= 3)


# ---------------------------------------------------------------- contraction


def test_top_k_contracts_every_vector_and_beats_random_k() -> None:
    gen = _gen(7)
    for trial in range(200):
        d = int(torch.randint(1, 300, (), generator=gen))
        k = int(torch.randint(1, d + 1, (), generator=gen))
        x = torch.randn(d, generator=gen, dtype=torch.float64) ** 3  # heavy tails
        if trial % 10 == 0:
            x = torch.ones(d, dtype=torch.float64)  # all ties
        err = float(((TopK(k=k).compress(x, gen).value - x) ** 2).sum())
        assert err <= (1 - k / d) * float(x.norm() ** 2) * (1 + 1e-12) + 1e-300
        rand = float(((RandomK(k=k, scaled=False).compress(x, gen).value - x) ** 2).sum())
        assert err <= rand * (1 + 1e-12)
        assert TopK(k=k).guarantee(d).delta == pytest.approx(k / d)


def test_scaled_sign_error_identity_and_contraction() -> None:
    gen = _gen(8)
    for d in (1, 3, 64, 1000):
        x = torch.randn(d, generator=gen, dtype=torch.float64)
        x[0] = 0.0  # sign(0) still costs one bit and the identity still holds
        err = float(((ScaledSign().compress(x, gen).value - x) ** 2).sum())
        assert err == pytest.approx(float(x.norm() ** 2 - x.abs().sum() ** 2 / d), rel=1e-9, abs=1e-12)
        assert err <= (1 - 1 / d) * float(x.norm() ** 2) + 1e-12


@pytest.mark.parametrize(
    "compressor",
    [
        Identity(),
        TopK(ratio=0.1),
        RandomK(ratio=0.1),
        RandomK(ratio=0.1, scaled=False),
        RandomDropout(0.3),
        RandomDropout(0.3, scaled=False),
        QSGD(4),
        ScaledSign(),
        SparsifyQuantize(levels=8, ratio=0.2),
        SparsifyQuantize(levels=1, ratio=0.2),
        SparsifyQuantize(levels=4, ratio=0.2, sparsifier="random_k"),
        PowerSGD(2, [(8, 6), (2,)]),
    ],
    ids=lambda c: repr(c)[:48],
)
def test_declared_class_holds_empirically(compressor) -> None:
    d, n = 50, 1000
    x = _x(d, seed=11)
    samples = _samples(compressor, x, n)
    g = compressor.guarantee(d)
    sq = ((samples - x) ** 2).sum(1)
    # Six standard errors of the Monte-Carlo mean (CLT), from the sample variance of each quantity.
    assert float(sq.mean()) <= g.error * float(x.norm() ** 2) + 6 * float(sq.std()) / math.sqrt(n) + 1e-9
    if g.unbiased:
        assert torch.all((samples.mean(0) - x).abs() <= 6 * samples.std(0) / math.sqrt(n) + 1e-9)


# ---------------------------------------------------------------- the slides' examples (spec 5.2)


def test_slides_sign_and_top1_examples() -> None:
    x = torch.tensor([1.7, -2.6, -3.5])
    signed = ScaledSign().compress(x, _gen(0)).value
    assert torch.equal(torch.sign(signed), torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(signed, torch.tensor([2.6, -2.6, -2.6]))  # scaled by ||x||_1 / d = 7.8 / 3
    assert torch.equal(TopK(k=1).compress(x, _gen(0)).value, torch.tensor([0.0, 0.0, -3.5]))


# ---------------------------------------------------------------- bits


def test_bits_are_counted_honestly() -> None:
    gen = _gen(3)
    for d in (1000, 1024, 1025):
        x = torch.randn(d, generator=gen)
        idx = math.ceil(math.log2(d))
        assert Identity().compress(x, gen).bits == 32 * d
        assert TopK(k=10).compress(x, gen).bits == 10 * (32 + idx)
        assert RandomK(ratio=0.01).compress(x, gen).bits == math.ceil(0.01 * d) * (32 + idx)
        assert QSGD(1).compress(x, gen).bits == 32 + 2 * d  # sign + level in {0, 1}
        assert QSGD(15).compress(x, gen).bits == 32 + 5 * d
        assert ScaledSign().compress(x, gen).bits == 32 + d
        assert SparsifyQuantize(levels=3, k=10).compress(x, gen).bits == 10 * idx + 32 + 10 * 3
    drops = [RandomDropout(0.5).compress(torch.ones(10), gen) for _ in range(50)]
    assert {m.bits for m in drops} == {0, 320}
    assert all((m.bits == 0) == bool(torch.all(m.value == 0)) for m in drops)
    # PowerSGD: rank 2 factors of the 8 x 27 view of a conv kernel, the bias (8,) sent as is.
    assert PowerSGD(2, [(8, 3, 3, 3), (8,)]).compress(torch.randn(8 * 27 + 8, generator=gen), gen).bits == (
        32 * 2 * (8 + 27) + 32 * 8
    )


# ---------------------------------------------------------------- seeding, batching, errors


@pytest.mark.parametrize("name", ["random_k", "dropout", "qsgd", "sparsify_quantize"])
def test_same_stream_same_message(name: str) -> None:
    params = {"random_k": {"k": 5}, "dropout": {"p": 0.5}, "qsgd": {"levels": 2}, "sparsify_quantize": {"levels": 2, "k": 5}}
    c = build_compressor(name, **params[name])
    x = _x(40).float()
    a = [c.compress(x, torch_generator(3, "compression", r, 7)).value for r in range(5)]
    b = [c.compress(x, torch_generator(3, "compression", r, 7)).value for r in range(5)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(a[0], u) for u in a[1:])


def test_compress_rows_matches_row_by_row() -> None:
    rows = torch.randn(4, 30, generator=_gen(4))
    c = RandomK(k=3)
    out, bits, states = compress_rows(c, rows, [_gen(10, i) for i in range(4)])
    for i in range(4):
        assert torch.equal(out[i], c.compress(rows[i], _gen(10, i)).value)
    assert bits == [3 * (32 + 5)] * 4 and states == [{}] * 4


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda: TopK(k=11).compress(torch.ones(10), _gen(0)), "k=11"),
        (lambda: build_compressor("top_k", k=0), "k=0"),
        (lambda: build_compressor("random_k", k=-3), "k=-3"),
        (lambda: build_compressor("top_k", ratio=1.5), "ratio=1.5"),
        (lambda: build_compressor("qsgd", levels=0), "s=0"),
        (lambda: build_compressor("sparsify_quantize", levels=0, k=2), "s=0"),
        (lambda: build_compressor("powersgd", rank=0, shapes=[(3, 3)]), "rank=0"),
        (lambda: build_compressor("dropout", p=0.0), "p=0.0"),
        (lambda: build_compressor("topk", k=1), "'topk'"),
        (lambda: build_compressor("qsgd", level=2), "allowed: levels"),
        (lambda: build_compressor("top_k", k=1, feedback="memory"), "'memory'"),
        (lambda: PowerSGD(1, [(3, 3)]).compress(torch.ones(10), _gen(0)), "d=10"),
    ],
)
def test_bad_input_gets_a_one_line_error_naming_what_is_allowed(call, fragment: str) -> None:
    with pytest.raises(FedsimError) as info:
        call()
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg
    assert "allowed" in msg or "match" in msg


def test_unknown_name_lists_every_compressor() -> None:
    with pytest.raises(FedsimError) as info:
        build_compressor("gzip")
    assert all(name in str(info.value) for name in compressor_names())
