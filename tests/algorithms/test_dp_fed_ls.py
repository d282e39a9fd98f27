"""DP-Fed-LS end to end on real MNIST: equivalences, noise scale, post-processing, budgets, config errors."""

import json

import pytest
import torch

from fedsim.algorithms.dp_fed_ls import ClippedClientTask
from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientContext, train_client
from fedsim.experiment import Experiment, resolve_config, run
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.privacy import compute_epsilon
from tests.helpers import OpaqueRuntime, small_config


def dp_config(tmp_path, privacy=None, **algorithm):
    cfg = small_config(tmp_path, kind="dp_fed_ls", weighting="uniform", **algorithm)
    cfg["data"]["num_clients"] = 40
    cfg["privacy"] = {"noise_multiplier": 1.0, "clip_norm": 0.5, **(privacy or {})}
    return cfg


def test_zero_noise_no_smoothing_large_clip_is_fedavg(tmp_path):
    dp = run(dp_config(tmp_path / "a", {"noise_multiplier": 0.0, "clip_norm": 1e6}))
    plain = small_config(tmp_path / "b", weighting="uniform")
    plain["data"]["num_clients"] = 40
    ref = run(plain)
    torch.testing.assert_close(dp.params, ref.params, rtol=0, atol=1e-6)
    assert dp.summary["privacy"]["epsilon"] is None  # no noise: no guarantee


def test_smoothing_changes_the_model_not_epsilon(tmp_path):
    a = run(dp_config(tmp_path / "a", ls_sigma=0.0))
    b = run(dp_config(tmp_path / "b", ls_sigma=2.0))
    assert not torch.allclose(a.params, b.params)
    assert [r["epsilon"] for r in a.history] == [r["epsilon"] for r in b.history]
    pa, pb = a.summary["privacy"], b.summary["privacy"]
    # 5 of 40 clients without replacement: replace-one accounting (dp-accounting), an RDP upper bound.
    assert pa["epsilon"] == pb["epsilon"] == compute_epsilon(noise_multiplier=1.0, sample_rate=5 / 40, steps=2,
                                                             delta=40 ** -1.1, sampling="uniform", population=40)
    assert pa["delta"] == pytest.approx(40 ** -1.1) and not pa["exact"] and "upper bound" in pa["note"]
    assert (pa["sampling"], pa["adjacency"], pa["cohort_size"]) == ("uniform", "replace-one", 5)


def test_server_noise_std_is_z_g_over_m(tmp_path):
    # A vanishing client lr leaves only the noise in the server step.
    cfg = dp_config(tmp_path, {"noise_multiplier": 2.0, "clip_norm": 0.5}, rounds=1, lr=1e-12)
    exp = Experiment(resolve_config(cfg))
    state = exp.algorithm.init(exp.initial_params)
    exp.algorithm.round(state, 0, exp.runtime)
    step = state.params - exp.initial_params
    assert float(step.std()) == pytest.approx(2.0 * 0.5 / 5, rel=0.04)


def test_the_round_treats_the_runtime_as_opaque(tmp_path):
    """Per-tensor smoothing gets the tensor sizes at build time, not from ``runtime.model``."""
    exp = Experiment(resolve_config(dp_config(tmp_path, rounds=1, ls_sigma=1.0)))
    a, b = exp.algorithm.init(exp.initial_params), exp.algorithm.init(exp.initial_params)
    exp.algorithm.round(a, 0, exp.runtime)
    exp.algorithm.round(b, 0, OpaqueRuntime(exp.runtime))
    assert torch.equal(a.params, b.params)


def test_an_empty_poisson_cohort_still_releases_accounted_noise(tmp_path):
    """The aggregate stage noises the (zero) sum even when nobody was sampled: the round is a
    mechanism step all the same, and the realized denominator max(|S_t|, 1) gives std z G."""
    cfg = dp_config(tmp_path, {"noise_multiplier": 2.0, "clip_norm": 0.5, "denominator": "realized"}, rounds=1,
                    participation={"kind": "poisson", "q": 1e-9})
    exp = Experiment(resolve_config(cfg))
    state = exp.algorithm.init(exp.initial_params)
    metrics = exp.algorithm.round(state, 0, exp.runtime)
    assert metrics.clients == 0 and metrics.bytes_up == 0 and exp.algorithm.accountant.steps == 1
    assert metrics.extra["noise_std"] == pytest.approx(2.0 * 0.5)
    assert float((state.params - exp.initial_params).std()) == pytest.approx(2.0 * 0.5, rel=0.04)


@pytest.mark.parametrize("every_step", [False, True])
def test_client_updates_are_clipped(every_step):
    model = FunctionalModel(build_model("logistic", seed=0))
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 784, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    local = LocalSGD(lr=0.5, batch_size=8, clip_radius=0.1 if every_step else None)
    res = train_client(ClippedClientTask(local, clip_norm=0.1), model, model.initial_params(), x, y, ClientContext(0, 0, 0))
    assert float(torch.linalg.vector_norm(res.update)) <= 0.1


def test_target_epsilon_calibrates_and_poisson_is_exact(tmp_path):
    res = run(dp_config(tmp_path, {"noise_multiplier": None, "target_epsilon": 4.0, "accountant": "rdp"},
                        participation={"kind": "poisson", "q": 0.125}, rounds=3))
    led = res.summary["privacy"]
    assert 4.0 - 0.01 <= led["epsilon"] <= 4.0 and led["exact"] and led["steps"] == 3
    assert res.history[-1]["epsilon"] == led["epsilon"]


def test_target_epsilon_with_fixed_cohorts_is_calibrated_by_the_ledgers_analysis(tmp_path):
    res = run(dp_config(tmp_path, {"noise_multiplier": None, "target_epsilon": 6.0}, rounds=2))
    led = res.summary["privacy"]
    assert led["sampling"] == "uniform" and 6.0 * 0.9 <= led["epsilon"] <= 6.0
    assert led["epsilon"] == compute_epsilon(noise_multiplier=led["noise_multiplier"], sample_rate=5 / 40, steps=2,
                                             delta=40 ** -1.1, sampling="uniform", population=40)
    poisson = compute_epsilon(noise_multiplier=led["noise_multiplier"], sample_rate=5 / 40, steps=2, delta=40 ** -1.1)
    assert poisson < led["epsilon"]  # the old Poisson calibration would have under-noised this run


def test_budget_stops_before_it_is_exceeded(tmp_path, cli):
    eps = [compute_epsilon(noise_multiplier=1.0, sample_rate=5 / 40, steps=t, delta=40 ** -1.1, sampling="uniform",
                           population=40) for t in range(1, 8)]
    budget = (eps[2] + eps[3]) / 2  # three rounds fit, the fourth would exceed it
    cfg = dp_config(tmp_path, {"budget": budget}, rounds=6)
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(cfg))
    code, _, err = cli("run", str(path), "-q")
    assert code == 0 and "privacy budget reached: round 4 would raise epsilon" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["rounds"] == 3
    assert summary["privacy"]["epsilon"] == pytest.approx(eps[2]) and summary["privacy"]["epsilon"] <= budget


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c["privacy"].update(delta=1.0), "privacy.delta"),
    (lambda c: c["privacy"].update(noise_multiplier=-1), "privacy.noise_multiplier"),
    (lambda c: c["privacy"].update(clip_norm=0), "privacy.clip_norm"),
    (lambda c: c["privacy"].update(target_epsilon=2.0), "exactly one of noise_multiplier and target_epsilon"),
    (lambda c: c["algorithm"].update(kind="fedavg", weighting="samples", ls_sigma=None) or c["algorithm"].pop("ls_sigma"),
     "privacy: needs a private algorithm.kind"),
    # Opacus' (eps, delta) conversion has a floor above 1e-9 (dp-accounting's reaches 0 as z grows).
    (lambda c: c["privacy"].update(noise_multiplier=None, target_epsilon=1e-9, delta=1e-5)
     or c["algorithm"].update(participation={"kind": "poisson", "q": 0.125}), "unreachable"),
    (lambda c: c["privacy"].update(accountant="prv"), "privacy.accountant"),
])
def test_bad_privacy_config_is_one_line(tmp_path, cli, mutate, needle):
    cfg = dp_config(tmp_path, ls_sigma=1.0)
    mutate(cfg)
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(cfg))
    code, _, err = cli("run", str(path), "-q")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err


def test_audit_reports_three_numbers_below_the_accounted_epsilon(tmp_path, cli):
    cfg = dp_config(tmp_path, {"noise_multiplier": 0.6, "delta": 1e-5}, rounds=2)
    run(cfg)
    code, out, err = cli("privacy", "audit", str(tmp_path / "run"), "--json", "--members", "500", "--canaries", "200")
    assert code == 0, err
    report = json.loads(out)
    acc, mi, low = report["accounted"], report["membership_inference"], report["empirical_lower_bound"]
    assert acc["epsilon_recomputed"] == pytest.approx(acc["epsilon_ledger"], rel=1e-6)
    assert 0.3 < mi["auc"] < 0.7 and 0.5 <= mi["accuracy"] < 0.6 and mi["members"] == 500
    assert 0 <= low["epsilon"] < acc["epsilon_ledger"] and low["canaries"] == 200
    code, _, err = cli("privacy", "audit", str(tmp_path))
    assert code == 2 and "not a private run folder" in err and len(err.strip().splitlines()) == 1


def test_serial_and_vectorized_runtimes_agree_with_per_step_clipping(tmp_path):
    results = []
    for kind in ("serial", "vectorized"):
        cfg = dp_config(tmp_path / kind, {"clip_mode": "every_step", "clip_norm": 0.05}, ls_sigma=1.0)
        cfg["runtime"] = {"kind": kind, "device": "cpu"}
        results.append(run(cfg))
    torch.testing.assert_close(results[0].params, results[1].params, rtol=1e-4, atol=1e-5)
    assert results[0].summary["privacy"]["epsilon"] == results[1].summary["privacy"]["epsilon"]
