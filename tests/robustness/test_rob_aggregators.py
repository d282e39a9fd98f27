"""Robust aggregators: breakdown-point properties, Krum's selection, scipy's geometric median."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from fedsim.errors import FedsimError
from fedsim.robustness.aggregators import (
    AGGREGATORS,
    Aggregator,
    bulyan,
    centered_clipping,
    coordinate_median,
    geometric_median,
    krum,
    krum_scores,
    mean,
    multi_krum,
    trimmed_mean,
)


def corrupted(n: int, f: int, d: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n updates, the first f replaced by 1e6 vectors (arbitrary, far away)."""
    g = torch.Generator().manual_seed(seed)
    honest = torch.randn(n, d, generator=g, dtype=torch.float64) + 1.0
    bad = honest.clone()
    bad[:f] = 1e6 * torch.sign(torch.randn(f, d, generator=g, dtype=torch.float64))
    return bad, honest[f:]


@pytest.mark.parametrize("n,f", [(5, 2), (10, 4), (11, 5), (20, 3)])
@pytest.mark.parametrize("rule", ["median", "trimmed_mean"])
def test_coordinatewise_rules_stay_in_the_honest_range(rule: str, n: int, f: int) -> None:
    x, honest = corrupted(n, f)
    out = AGGREGATORS[rule](x, None, f=f)
    assert (out >= honest.min(0).values - 1e-12).all() and (out <= honest.max(0).values + 1e-12).all()
    assert mean(x).abs().max() > 1e4  # the plain mean does not


@pytest.mark.parametrize("n,f", [(7, 2), (10, 3), (13, 5), (20, 8)])
def test_krum_selects_an_honest_update_when_n_exceeds_2f_plus_2(n: int, f: int) -> None:
    x, honest = corrupted(n, f)
    out = krum(x, None, f=f)
    assert any(torch.equal(out, h) for h in honest)
    # Multi-Krum with m = n - f averages honest rows only.
    assert torch.allclose(multi_krum(x, None, f=f), honest.mean(0))


def test_krum_scores_by_hand() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0], [11.0]], dtype=torch.float64)
    # f = 1: each row sums its n - f - 2 = 2 nearest squared distances.
    assert torch.allclose(krum_scores(x, 1), torch.tensor([1 + 9, 1 + 4, 4 + 9, 1 + 49, 1 + 64], dtype=torch.float64))


def test_rules_refuse_outside_their_breakdown_point() -> None:
    x = torch.randn(6, 4)
    with pytest.raises(FedsimError, match="n > 2f"):
        krum(x, None, f=2)
    with pytest.raises(FedsimError, match="n >= 4f"):
        bulyan(x, None, f=1)
    with pytest.raises(FedsimError, match="f < n/2"):
        coordinate_median(x, None, f=3)
    with pytest.raises(FedsimError, match="trim"):
        trimmed_mean(x, None, f=3)
    with pytest.raises(FedsimError, match="aggregator.kind"):
        Aggregator(kind="average")


def test_weiszfeld_matches_scipy_minimization_of_the_sum_of_distances() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 4, generator=g, dtype=torch.float64)
    x[0] += 20.0
    w = torch.rand(9, generator=g, dtype=torch.float64)
    w = w / w.sum()
    ours = geometric_median(x, w, nu=1e-10, iterations=1000, tol=1e-14).numpy()
    xs, ws = x.numpy(), w.numpy()
    objective = lambda z: float((ws * np.linalg.norm(xs - z, axis=1)).sum())  # noqa: E731
    ref = scipy.optimize.minimize(objective, xs.mean(0), method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}).x
    assert objective(ours) <= objective(ref) + 1e-9
    assert np.allclose(ours, ref, atol=1e-4)


def test_centered_clipping_with_a_large_radius_is_the_mean() -> None:
    x = torch.randn(8, 5, dtype=torch.float64)
    w = torch.rand(8, dtype=torch.float64)
    w = w / w.sum()
    assert torch.allclose(centered_clipping(x, w, tau=1e9, iterations=1), mean(x, w))
    assert torch.allclose(centered_clipping(x, w, tau=1e9, iterations=5), mean(x, w))


def test_centered_clipping_bounds_the_pull_of_outliers() -> None:
    x, honest = corrupted(10, 2, d=5)
    out = centered_clipping(x, None, tau=3.0, iterations=10)
    # Each of the f rows moves v by at most tau * p_k per iteration.
    assert (out - honest.mean(0)).norm() < 10 * 2 * 3.0 / 10 + 1.0


def test_bulyan_stays_in_the_honest_range() -> None:
    x, honest = corrupted(11, 2)
    out = bulyan(x, None, f=2)
    assert (out >= honest.min(0).values).all() and (out <= honest.max(0).values).all()


@pytest.mark.parametrize("kind", sorted(AGGREGATORS))
def test_every_rule_is_close_to_the_mean_on_iid_updates_without_attackers(kind: str) -> None:
    # Tolerance: IID updates around a common mean (n = 40, per-coordinate std sigma = 0.1). A rule
    # that averages many rows is within sigma of the mean in every coordinate; Krum returns one
    # row, so its tolerance is a single update's spread, 5 sigma.
    g = torch.Generator().manual_seed(5)
    x = 1.0 + 0.1 * torch.randn(40, 50, generator=g, dtype=torch.float64)
    agg = Aggregator(kind=kind, assumed_fraction=0.1, options={"tau": 10.0} if kind == "centered_clipping" else {})
    out = agg(x, torch.full((40,), 1 / 40, dtype=torch.float64))
    assert (out - x.mean(0)).abs().max() < (0.5 if kind == "krum" else 0.1)
