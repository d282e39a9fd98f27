"""Clipping bounds and the Gaussian mechanism's measured noise."""

import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.privacy.clipping import clip_l2
from fedsim.privacy.mechanism import add_gaussian_noise, classic_gaussian_sigma


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_clipped_rows_have_norm_at_most_g(scale):
    g = torch.randn(500, 300, generator=torch.Generator().manual_seed(1)) * scale
    clipped = clip_l2(g, 0.3)
    assert (torch.linalg.vector_norm(clipped, dim=-1) <= 0.3).all()
    small = torch.linalg.vector_norm(g, dim=-1) < 0.29
    torch.testing.assert_close(clipped[small], g[small], rtol=1e-5, atol=0)
    cos = torch.nn.functional.cosine_similarity(clipped, g, dim=-1)
    torch.testing.assert_close(cos, torch.ones_like(cos))


def test_one_flat_update_is_clipped_as_one_vector():
    update = torch.full((1000,), 0.1)
    assert torch.linalg.vector_norm(clip_l2(update, 1.0)) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf")])
def test_clip_norm_must_be_positive(bad):
    with pytest.raises(FedsimError, match="clip norm"):
        clip_l2(torch.ones(3), bad)


def test_noise_std_is_z_times_sensitivity_and_seeded():
    total = torch.zeros(400_000)
    noisy = add_gaussian_noise(total, noise_multiplier=1.5, sensitivity=0.3, generator=torch.Generator().manual_seed(3))
    assert float(noisy.std()) == pytest.approx(0.45, rel=0.01)
    assert abs(float(noisy.mean())) < 0.45 * 5 / 400_000**0.5
    again = add_gaussian_noise(total, noise_multiplier=1.5, sensitivity=0.3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)
    with pytest.raises(FedsimError, match="noise multiplier"):
        add_gaussian_noise(total, noise_multiplier=-0.1, sensitivity=1.0, generator=torch.Generator())


def test_classic_gaussian_calibration():
    assert classic_gaussian_sigma(sensitivity=2.0, epsilon=0.5, delta=1e-5) == pytest.approx(
        2.0 * (2 * torch.log(torch.tensor(1.25e5, dtype=torch.float64)).item()) ** 0.5 / 0.5)
    with pytest.raises(FedsimError, match="epsilon"):
        classic_gaussian_sigma(sensitivity=1.0, epsilon=2.0, delta=1e-5)
