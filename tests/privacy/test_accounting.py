"""Epsilon against Opacus' own reference values (exact step counts) and closed forms (anchors.md §3)."""

import math

import numpy as np
import pytest
from opacus.accountants.analysis.rdp import compute_rdp

from fedsim.errors import FedsimError
from fedsim.privacy import PrivacyAccountant, calibrate_noise_multiplier, compute_epsilon
from fedsim.privacy.analysis import RDP_ORDERS, gaussian_exact_epsilon, rdp_full_batch, slide_theorem_dpfedls, slide_theorem_dpsgd

MNIST_Q = 256 / 60000


def test_opacus_unit_test_values_exact_step_counts():
    # Opacus' RDP test uses int(90/0.04) = 2250 steps, its PRV test int(90//0.04) = 2249.
    assert compute_epsilon(noise_multiplier=1.5, sample_rate=0.04, steps=2250, delta=1e-5) == pytest.approx(
        7.32911117143, abs=5e-8)
    assert compute_epsilon(noise_multiplier=1.5, sample_rate=0.04, steps=2249, delta=1e-5,
                           accountant="prv") == pytest.approx(6.777395712150674, abs=1e-6)


@pytest.mark.parametrize("z,q,steps,rdp,prv", [
    (1.1, MNIST_Q, 14063, 2.597, 2.392),
    (1.3, MNIST_Q, 3516, 0.955, 0.875),
    (0.7, MNIST_Q, 10547, 6.318, 5.650),
    (4.0, 0.01, 10000, 1.035, 0.957),
    (1.0, 0.01, 1000, 2.101, 1.838),
])
def test_reference_table(z, q, steps, rdp, prv):
    assert compute_epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=1e-5) == pytest.approx(rdp, abs=5e-4)
    assert compute_epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=1e-5,
                           accountant="prv") == pytest.approx(prv, abs=5e-4)


@pytest.mark.parametrize("accountant,steps,expected,tol", [
    ("rdp", 2250, 1.416, 5e-4), ("rdp", 2000, 1.3562, 5e-5),
    ("prv", 2250, 1.34765625, 1e-8), ("prv", 2000, 1.2915, 5e-5),
])
def test_noise_calibration_matches_opacus_tests(accountant, steps, expected, tol):
    z = calibrate_noise_multiplier(target_epsilon=8, delta=1e-5, sample_rate=0.04, steps=steps, accountant=accountant)
    assert z == pytest.approx(expected, abs=tol)
    assert compute_epsilon(noise_multiplier=z, sample_rate=0.04, steps=steps, delta=1e-5, accountant=accountant) <= 8


def test_q1_closed_form():
    z, steps, delta = 2.0, 10, 1e-5
    closed = rdp_full_batch(noise_multiplier=z, steps=steps)
    np.testing.assert_allclose(compute_rdp(q=1.0, noise_multiplier=z, steps=steps, orders=list(RDP_ORDERS)), closed)
    assert closed[list(RDP_ORDERS).index(2)] == pytest.approx(2.5)
    a = np.asarray(RDP_ORDERS)
    by_hand = np.min(closed - (np.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a))
    assert compute_epsilon(noise_multiplier=z, sample_rate=1.0, steps=steps, delta=delta) == pytest.approx(by_hand)


@pytest.mark.parametrize("z,steps", [(2.0, 10), (1.0, 100), (5.0, 1000)])
def test_accountants_bound_the_exact_gaussian_epsilon_at_q1(z, steps):
    exact = gaussian_exact_epsilon(noise_multiplier=z, steps=steps, delta=1e-5)
    rdp = compute_epsilon(noise_multiplier=z, sample_rate=1.0, steps=steps, delta=1e-5)
    prv = compute_epsilon(noise_multiplier=z, sample_rate=1.0, steps=steps, delta=1e-5, accountant="prv")
    assert exact <= prv <= exact + 0.02 and prv < rdp


def test_small_targets_reach_below_opacus_default_orders():
    # The DP-LSSGD table's eps = 0.10 at delta = 1e-5 is out of reach of orders <= 63.
    z = calibrate_noise_multiplier(target_epsilon=0.1, delta=1e-5, sample_rate=128 / 60000, steps=4688)
    assert compute_epsilon(noise_multiplier=z, sample_rate=128 / 60000, steps=4688, delta=1e-5) <= 0.1


def test_zero_noise_is_infinite_epsilon_and_zero_steps_zero():
    assert compute_epsilon(noise_multiplier=0.0, sample_rate=0.1, steps=3, delta=1e-5) == math.inf
    assert compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=0, delta=1e-5) == 0.0


def test_accountant_history_ledger_and_lookahead():
    acc = PrivacyAccountant(delta=1e-5)
    for _ in range(99):
        acc.step(noise_multiplier=1.0, sample_rate=0.01)
    ahead = acc.epsilon_after(noise_multiplier=1.0, sample_rate=0.01)
    acc.step(noise_multiplier=1.0, sample_rate=0.01)
    assert acc.history == [(1.0, 0.01, 100)] and acc.epsilon() == ahead
    assert acc.epsilon() == compute_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=100, delta=1e-5)
    ledger = acc.ledger()
    assert ledger["exact"] and ledger["steps"] == 100 and ledger["noise_multiplier"] == 1.0
    assert PrivacyAccountant.from_state_dict(acc.state_dict()).epsilon() == acc.epsilon()
    uniform = PrivacyAccountant(delta=1e-5, sampling="uniform", population=1000).ledger()
    assert not uniform["exact"] and "upper bound" in uniform["note"]


def test_slide_theorem_is_flagged_infeasible():
    k = 2000
    for tau in (0.01, 0.05, 0.1, 0.2):
        for rounds in (10, 100, 1000, 10000):
            for eps in (0.5, 2, 5, 20, 100):
                res = slide_theorem_dpfedls(tau=tau, clip_norm=0.3, epsilon=eps, delta=k**-1.1, rounds=rounds)
                assert not res.feasible and res.nu == pytest.approx(4 * tau * 0.3 / eps)
    assert "never hold together" in res.note


@pytest.mark.parametrize("eps,nu", [(0.3, 0.1162), (0.25, 0.1393), (0.2, 0.1739), (0.15, 0.2316), (0.1, 0.3471)])
def test_dpsgd_slide_theorem_reproduces_reference_code_noise(eps, nu):
    res = slide_theorem_dpsgd(steps=4688, n=60000, batch_size=128, clip_norm=1.0, epsilon=eps, delta=1e-5)
    assert res.nu == pytest.approx(nu, abs=5e-5) and not res.feasible


@pytest.mark.parametrize("kwargs,match", [
    (dict(noise_multiplier=1.0, sample_rate=0.1, steps=10, delta=1.0), "delta"),
    (dict(noise_multiplier=1.0, sample_rate=0.1, steps=10, delta=0.0), "delta"),
    (dict(noise_multiplier=-1.0, sample_rate=0.1, steps=10, delta=1e-5), "noise multiplier"),
    (dict(noise_multiplier=1.0, sample_rate=1.5, steps=10, delta=1e-5), "sample rate"),
    (dict(noise_multiplier=1.0, sample_rate=0.1, steps=-2, delta=1e-5), "steps"),
    (dict(noise_multiplier=1.0, sample_rate=0.1, steps=10, delta=1e-5, accountant="gdp"), "accountant"),
])
def test_bad_input_one_line(kwargs, match):
    with pytest.raises(FedsimError, match=match) as err:
        compute_epsilon(**kwargs)
    assert "\n" not in str(err.value)


def test_unreachable_target_one_line():
    with pytest.raises(FedsimError, match="unreachable") as err:
        calibrate_noise_multiplier(target_epsilon=1e-9, delta=1e-5, sample_rate=1.0, steps=1)
    assert "\n" not in str(err.value)
    with pytest.raises(FedsimError, match="target epsilon"):
        calibrate_noise_multiplier(target_epsilon=0.0, delta=1e-5, sample_rate=0.1, steps=1)
