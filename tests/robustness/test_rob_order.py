"""Order of robustness, compression and DP: compress -> clip -> Byzantine replacement -> mean -> noise,
and the combinations that would break the privacy guarantee refused in one line (exit 2)."""

from __future__ import annotations

import pytest
import torch
import yaml

from fedsim.experiment import Experiment, resolve_config, run

pytestmark = pytest.mark.slow


def private_config(tmp_path, attack: str = "sign_flip", **extra) -> dict:
    """DP-Fed-LS, 20 clients, 10 per round, 4 Byzantine, random-k uplink (scaled by d/k: it raises norms)."""
    return {
        "seed": 0,
        "data": {"num_clients": 20, "partition": {"kind": "iid"}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "dp_fed_ls", "rounds": 2, "clients_per_round": 10, "local_steps": 3, "lr": 0.1, "ls_sigma": 1.0},
        "privacy": {"noise_multiplier": 1.0, "clip_norm": 0.5},
        "compression": {"uplink": {"kind": "random_k", "ratio": 0.1}},
        "robustness": {"byzantine": {"fraction": 0.2, "attack": attack, "scale": 4.0} if attack == "sign_flip" else
                       {"fraction": 0.2, "attack": attack}},
        "runtime": {"kind": "serial", "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "plot": False},
        **extra,
    }


def test_clipping_comes_after_compression_and_before_the_attackers(tmp_path):
    cfg = resolve_config(private_config(tmp_path))
    experiment = Experiment(cfg)
    fedavg = experiment.algorithm.inner  # the compressed DP-Fed-LS
    state = fedavg.init(experiment.initial_params)
    cohort = list(range(20))
    result = fedavg.train_cohort(state, cohort, 0, experiment.runtime)
    norms = result.updates.norm(dim=1)
    bad = fedavg.byzantine.mask(result.clients)
    # Honest rows: compressed (random-k scaled by d/k would exceed G), then clipped to G = 0.5.
    assert bad.sum() == 4 and (norms[~bad] <= 0.5 * (1 + 1e-5)).all() and (norms[~bad] > 0.45).all()
    # Byzantine rows: what the attacker sends, here its clipped update times -4 (not clipped again).
    assert (norms[bad] > 0.5 * 3.9).all()
    # Compression ran before clipping: each honest row keeps ratio * d coordinates.
    assert ((result.updates[~bad] != 0).sum(1) <= int(0.1 * result.updates.shape[1]) + 1).all()


def test_non_omniscient_attackers_keep_the_honest_clients_accounting(tmp_path):
    attacked = run(private_config(tmp_path), out=tmp_path / "a")
    clean = run({k: v for k, v in private_config(tmp_path).items() if k != "robustness"}, out=tmp_path / "c")
    assert attacked.summary["privacy"]["epsilon"] == clean.summary["privacy"]["epsilon"] > 0


@pytest.mark.parametrize("change,message", [
    ({"attack": "alie"}, "robustness.byzantine.attack: 'alie' with privacy: an omniscient attacker"),
    ({"attack": "ipm"}, "robustness.byzantine.attack: 'ipm' with privacy"),
    ({"aggregator": "median"}, "algorithm.aggregator: 'median' with privacy"),
])
def test_orders_that_break_the_privacy_guarantee_are_refused_in_one_line(tmp_path, cli, change, message):
    cfg = private_config(tmp_path, attack=change.get("attack", "sign_flip"))
    if "aggregator" in change:
        cfg["algorithm"]["aggregator"] = {"kind": change["aggregator"], "assumed_fraction": 0.2}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = cli("run", str(path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_objective_compression_attackers_and_a_robust_rule_compose(tmp_path):
    # J^1 objective -> top-k with error feedback -> sign flip x4 by 20% -> trimmed mean, all by configuration.
    # Measured (load ~10, 1 thread): trimmed mean 0.740 (0.766 without attackers), mean 0.097.
    cfg = {
        "seed": 0, "data": {"num_clients": 20, "partition": {"kind": "iid"}}, "model": {"kind": "logistic"},
        "algorithm": {"kind": "fedavg", "rounds": 4, "clients_per_round": 20, "participation": {"kind": "full"}, "local_steps": 5,
                      "lr": 0.1, "aggregator": {"kind": "trimmed_mean", "assumed_fraction": 0.2}},
        "compression": {"uplink": {"kind": "top_k", "ratio": 0.1, "feedback": "ef"}},
        "robustness": {"training": {"kind": "gradient_norm", "eps": 0.1, "q": 1},
                       "byzantine": {"fraction": 0.2, "attack": "sign_flip", "scale": 4.0}},
        "runtime": {"kind": "vectorized", "device": "cpu"}, "output": {"dir": str(tmp_path / "runs"), "plot": False},
    }
    from fedsim.output import read_metrics
    from tests.helpers import assert_rows_close

    vector = run(cfg, out=tmp_path / "v")
    serial = run(cfg, overrides=["runtime.kind=serial"], out=tmp_path / "s")
    assert_rows_close(read_metrics(serial.run_dir), read_metrics(vector.run_dir))
    mean = run(cfg, overrides=["algorithm.aggregator.kind=mean"], out=tmp_path / "m")
    clean = run(cfg, overrides=["robustness.byzantine.fraction=0"], out=tmp_path / "c")
    print(f"trimmed mean {vector.final_accuracy:.4f}, mean {mean.final_accuracy:.4f}, no attacker {clean.final_accuracy:.4f}")
    assert vector.final_accuracy > clean.final_accuracy - 0.05 and mean.final_accuracy < 0.3
