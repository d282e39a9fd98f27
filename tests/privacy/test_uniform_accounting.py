"""Fixed-size cohorts (sampling without replacement) against Google's dp-accounting, computed here."""

import json

import dp_accounting
import pytest
from dp_accounting.rdp import RdpAccountant
from typer.testing import CliRunner

from fedsim.cli.privacy import app
from fedsim.errors import FedsimError
from fedsim.privacy import PrivacyAccountant, calibrate_noise_multiplier, compute_epsilon
from fedsim.privacy.analysis import RDP_ORDERS

runner = CliRunner()


def library_epsilon(z, cohort, population, steps, delta, orders=RDP_ORDERS):
    """dp-accounting directly: replace-one, the clipped sum's sensitivity 2G, so multiplier z / 2."""
    acc = RdpAccountant(orders=list(orders), neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    event = dp_accounting.SampledWithoutReplacementDpEvent(population, cohort, dp_accounting.GaussianDpEvent(z / 2))
    acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return acc.get_epsilon(delta)


@pytest.mark.parametrize("z,cohort,population,steps,delta", [
    (1.5, 100, 2000, 200, 2000 ** -1.1),   # the example (Poisson: 2.08)
    (3.0, 20, 2000, 300, 2000 ** -1.1),
    (1.0, 128, 60000, 500, 1e-5),
])
def test_uniform_epsilon_is_dp_accountings(z, cohort, population, steps, delta):
    ours = compute_epsilon(noise_multiplier=z, sample_rate=cohort / population, steps=steps, delta=delta,
                           sampling="uniform", population=population)
    assert ours == pytest.approx(library_epsilon(z, cohort, population, steps, delta), rel=1e-12)
    # The library's default orders are a subset-ish grid: ours may only be tighter.
    assert ours <= library_epsilon(z, cohort, population, steps, delta, orders=dp_accounting.rdp.rdp_privacy_accountant.DEFAULT_RDP_ORDERS) + 1e-9


@pytest.mark.parametrize("z", [0.8, 1.5, 4.0])
@pytest.mark.parametrize("q,population", [(0.01, 2000), (0.05, 2000), (0.5, 40), (1.0, 40)])
@pytest.mark.parametrize("steps,delta", [(10, 1e-5), (300, 2000 ** -1.1)])
def test_uniform_is_never_below_poisson(z, q, population, steps, delta):
    kw = dict(noise_multiplier=z, sample_rate=q, steps=steps, delta=delta)
    assert compute_epsilon(**kw, sampling="uniform", population=population) >= compute_epsilon(**kw)


def test_uniform_calibration_uses_the_same_analysis():
    k, delta, steps = 2000, 2000 ** -1.1, 100
    z = calibrate_noise_multiplier(target_epsilon=3.0, delta=delta, sample_rate=20 / k, steps=steps,
                                   sampling="uniform", population=k)
    assert library_epsilon(z, 20, k, steps, delta) <= 3.0
    assert library_epsilon(z * 0.99, 20, k, steps, delta) > 3.0  # and it is (nearly) the smallest such z
    poisson = calibrate_noise_multiplier(target_epsilon=3.0, delta=delta, sample_rate=20 / k, steps=steps)
    assert z > poisson


def test_accountant_ledger_says_what_it_accounts():
    acc = PrivacyAccountant(delta=1e-5, sampling="uniform", population=2000)
    for _ in range(3):
        acc.step(noise_multiplier=1.5, sample_rate=0.01)
    led = acc.ledger()
    assert led["epsilon"] == pytest.approx(library_epsilon(1.5, 20, 2000, 3, 1e-5))
    assert (led["sampling"], led["adjacency"], led["analysis"], led["exact"]) == (
        "uniform", "replace-one", "dp-accounting-rdp", False)
    assert led["cohort_size"] == 20 and led["sensitivity_over_clip"] == 2.0 and "upper bound" in led["note"]
    assert PrivacyAccountant.from_state_dict(acc.state_dict()).epsilon() == acc.epsilon()
    full = PrivacyAccountant(delta=1e-5, sampling="full").ledger()
    poisson = PrivacyAccountant(delta=1e-5).ledger()
    assert full["exact"] and poisson["exact"] and full["adjacency"] == poisson["adjacency"] == "add/remove-one"
    assert poisson["analysis"] == "opacus-rdp"


@pytest.mark.parametrize("call,needle", [
    (lambda: PrivacyAccountant(delta=1e-5, sampling="uniform"), "population"),
    (lambda: PrivacyAccountant(delta=1e-5, sampling="uniform", population=100, accountant="prv"), "without replacement"),
    (lambda: compute_epsilon(noise_multiplier=1, sample_rate=0.001, steps=3, delta=1e-5, sampling="uniform",
                             population=100), "0 units"),
    (lambda: compute_epsilon(noise_multiplier=1, sample_rate=0.5, steps=3, delta=1e-5, sampling="full"), "q = 1"),
])
def test_refusals_are_one_line(call, needle):
    with pytest.raises(FedsimError, match=needle) as err:
        call()
    assert "\n" not in str(err.value)


def test_cli_uniform_epsilon_and_noise():
    k, delta = 2000, 2000 ** -1.1
    res = runner.invoke(app, ["epsilon", "--sampling", "uniform", "--population", str(k), "--sample-rate", "0.05",
                              "--steps", "200", "--delta", str(delta), "--noise-multiplier", "1.5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["epsilon"] == pytest.approx(library_epsilon(1.5, 100, k, 200, delta), rel=1e-12)
    assert (out["sampling"], out["adjacency"], out["accountant"], out["exact"]) == ("uniform", "replace-one", "rdp", False)
    res = runner.invoke(app, ["noise", "--sampling", "uniform", "--population", str(k), "--sample-rate", "0.01",
                              "--steps", "50", "--delta", str(delta), "--target-epsilon", "4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert library_epsilon(out["noise_multiplier"], 20, k, 50, delta) <= 4 and out["cohort_size"] == 20


def test_cli_full_is_labelled_exact():
    res = runner.invoke(app, ["epsilon", "--sampling", "full", "--steps", "10", "--delta", "1e-5",
                              "--noise-multiplier", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["exact"] is True and out["sample_rate"] == 1.0 and out["note"].startswith("exact")
    assert out["epsilon"] == compute_epsilon(noise_multiplier=2, sample_rate=1.0, steps=10, delta=1e-5)
