"""Laplacian smoothing against the dense circulant solve and its spectral properties (spec §1.3-§1.5)."""

import math

import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.privacy.smoothing import laplacian_smooth, ls_beta, ls_eigenvalues, ls_gamma, smooth_flat


def dense_operator(d: int, sigma: float, order: int) -> torch.Tensor:
    """``I + sigma L^order`` with L = 2I - S - S^T the periodic Laplacian (S the cyclic shift)."""
    shift = torch.roll(torch.eye(d, dtype=torch.float64), 1, dims=0)
    lap = 2 * torch.eye(d, dtype=torch.float64) - shift - shift.T
    return torch.eye(d, dtype=torch.float64) + sigma * torch.linalg.matrix_power(lap, order)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 17, 64])
@pytest.mark.parametrize("sigma", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_fft_smoothing_equals_dense_circulant_solve(d, sigma, order):
    g = torch.randn(4, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    dense = torch.linalg.solve(dense_operator(d, sigma, order), g.T).T
    torch.testing.assert_close(laplacian_smooth(g, sigma, order), dense, rtol=1e-10, atol=1e-12)


def test_first_order_matrix_is_the_slides_matrix():
    a = dense_operator(6, 0.7, 1)
    assert a[0, 0] == pytest.approx(1 + 2 * 0.7) and a[0, 1] == a[0, 5] == pytest.approx(-0.7) and a[0, 2] == 0


def test_d2_eigenvalues_follow_the_matrix_not_the_stencil_code():
    lam = ls_eigenvalues(2, 1.5)
    torch.testing.assert_close(lam, torch.tensor([1.0, 1 + 4 * 1.5], dtype=torch.float64))


def test_sigma_zero_is_the_identity_and_d1_too():
    g = torch.randn(3, 50)
    assert torch.equal(laplacian_smooth(g, 0.0), g)
    one = torch.randn(7, 1)
    assert torch.equal(laplacian_smooth(one, 5.0), one)


@pytest.mark.parametrize("order", [1, 2])
def test_preserves_the_mean(order):
    g = torch.randn(5, 101, dtype=torch.float64)
    torch.testing.assert_close(laplacian_smooth(g, 2.0, order).sum(-1), g.sum(-1))


def test_contracts_every_lp_norm_first_order():
    g = torch.randn(200, 33, dtype=torch.float64) * torch.rand(200, 1, dtype=torch.float64) * 10
    s = laplacian_smooth(g, 1.3)
    for p in (1, 1.5, 2, 3, math.inf):
        assert (torch.linalg.vector_norm(s, p, dim=-1) <= torch.linalg.vector_norm(g, p, dim=-1) + 1e-12).all()


@pytest.mark.parametrize("d", [5, 10, 100, 1000])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0, 10.0])
def test_gamma_beta_closed_forms_equal_spectral_sums(d, sigma):
    half = ls_eigenvalues(d, sigma)
    lam = torch.cat([half, half[1:(d + 1) // 2].flip(0)])
    assert ls_gamma(d, sigma) == pytest.approx(float((1 / lam).mean()), abs=1e-12)
    assert ls_beta(d, sigma) == pytest.approx(float((lam ** -2).mean()), abs=1e-12)


def test_beta_limits_on_the_slides():
    for sigma, beta in [(1, 0.2683), (2, 0.1852), (3, 0.1493)]:
        assert ls_beta(10_000, sigma) == pytest.approx(beta, abs=1e-4)


def test_smoothed_noise_energy_is_nu2_d_beta():
    d, nu, sigma = 100, 0.7, 2.0
    n = torch.randn(20_000, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * nu
    energy = laplacian_smooth(n, sigma).pow(2).sum(-1).mean()
    assert float(energy) == pytest.approx(nu**2 * d * ls_beta(d, sigma), rel=0.02)
    assert ls_beta(d, sigma) < 0.2  # and far below the unsmoothed nu^2 d


def test_per_tensor_mode_smooths_each_slice_on_its_own():
    sizes = [30, 10, 1]
    flat = torch.randn(2, 41)
    per = smooth_flat(flat, 1.0, sizes=sizes)
    torch.testing.assert_close(per[:, :30], laplacian_smooth(flat[:, :30], 1.0))
    torch.testing.assert_close(per[:, 30:40], laplacian_smooth(flat[:, 30:40], 1.0))
    assert torch.equal(per[:, 40], flat[:, 40])
    assert not torch.allclose(per, smooth_flat(flat, 1.0, mode="global_flat"))


def test_float32_stays_float32_and_bad_input_is_one_line():
    assert laplacian_smooth(torch.randn(9), 1.0).dtype == torch.float32
    with pytest.raises(FedsimError, match="sigma"):
        laplacian_smooth(torch.randn(9), -1.0)
    with pytest.raises(FedsimError, match="order"):
        laplacian_smooth(torch.randn(9), 1.0, order=0)
    with pytest.raises(FedsimError, match="sizes"):
        smooth_flat(torch.randn(9), 1.0, sizes=[4, 4])
