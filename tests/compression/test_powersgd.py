"""PowerSGD (Vogels et al. 2019): exactness on low-rank matrices, warm start, per-tensor layout."""

from __future__ import annotations

import torch

from fedsim.compression import PowerSGD
from fedsim.seeding import torch_generator


def _gen(*coords: int) -> torch.Generator:
    return torch_generator(0, "test-powersgd", *coords)


def _low_rank(rows: int, cols: int, rank: int, seed: int) -> torch.Tensor:
    gen = _gen(seed)
    return torch.randn(rows, rank, generator=gen, dtype=torch.float64) @ torch.randn(
        rank, cols, generator=gen, dtype=torch.float64
    )


def test_rank_r_matrices_are_recovered_exactly_with_and_after_warm_start() -> None:
    comp = PowerSGD(3, [(20, 30), (20,), (6, 2, 5)])
    m1, m2 = _low_rank(20, 30, 3, 1), _low_rank(6, 10, 3, 2)
    bias = torch.randn(20, generator=_gen(3), dtype=torch.float64)
    x = torch.cat([m1.flatten(), bias, m2.flatten()])
    first = comp.compress(x, _gen(4))
    assert torch.allclose(first.value, x, atol=1e-9)
    second = comp.compress(x, _gen(5), first.state)  # warm start from the stored Q
    assert torch.allclose(second.value, x, atol=1e-9)
    assert torch.equal(second.value[600:620], bias)  # the 1-D tensor travels uncompressed
    assert second.bits == 32 * 3 * (20 + 30) + 32 * 20 + 32 * 3 * (6 + 10)


def test_warm_start_converges_to_the_best_rank_r_approximation() -> None:
    gen = _gen(6)
    u, _ = torch.linalg.qr(torch.randn(40, 40, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen, dtype=torch.float64))
    sing = 0.7 ** torch.arange(30, dtype=torch.float64)
    m = u[:, :30] @ torch.diag(sing) @ v.T
    best = float((sing[2:] ** 2).sum())  # Eckart-Young error of the best rank-2 approximation
    comp, state, errors = PowerSGD(2, [(40, 30)]), {}, []
    for t in range(30):
        msg = comp.compress(m.flatten(), _gen(7, t), state)
        state = msg.state
        errors.append(float(((msg.value - m.flatten()) ** 2).sum()))
    assert errors[-1] <= best * (1 + 1e-6)
    assert errors[0] > errors[-1]
    assert all(e <= float((m**2).sum()) * (1 + 1e-12) for e in errors)  # a projection never expands


def test_cold_start_is_seeded_and_matrices_too_small_to_gain_are_sent_whole() -> None:
    comp = PowerSGD(2, [(3, 3), (50, 40)])
    assert [b.low_rank for b in comp.blocks()] == [False, True]  # 2 * (3 + 3) >= 9
    x = torch.randn(9 + 2000, generator=_gen(8))
    a, b = comp.compress(x, _gen(9)), comp.compress(x, _gen(9))
    assert torch.equal(a.value, b.value) and torch.equal(a.value[:9], x[:9])
    assert a.bits == 32 * 9 + 32 * 2 * 90
