"""Robust training composes with the other algorithms: FedAvg, FedProx, SCAFFOLD, DP-Fed-LS, D-PSGD, CHOCO-SGD;
serial and vectorized runs agree, and the objective really changes training."""

from __future__ import annotations

import pytest

from fedsim.errors import FedsimError
from fedsim.experiment import run
from fedsim.output import read_metrics
from tests.helpers import assert_rows_close

pytestmark = pytest.mark.slow

BASE = {
    "seed": 0,
    "data": {"num_clients": 20, "partition": {"kind": "dirichlet", "alpha": 0.5}},
    "model": {"kind": "logistic"},
    "runtime": {"kind": "vectorized", "device": "cpu"},
}
ALGORITHMS = {
    "fedavg": {"algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 5, "local_steps": 3, "lr": 0.1}},
    "dpsgd": {"algorithm": {"kind": "dpsgd", "rounds": 2, "local_steps": 3, "lr": 0.1}, "topology": {"spec": "ring"}},
    "fedprox": {"algorithm": {"kind": "fedprox", "mu": 0.1, "rounds": 2, "clients_per_round": 5, "local_steps": 3, "lr": 0.1}},
    "scaffold": {"algorithm": {"kind": "scaffold", "rounds": 2, "clients_per_round": 5, "local_steps": 3, "lr": 0.1}},
    "dp_fed_ls": {"algorithm": {"kind": "dp_fed_ls", "rounds": 2, "clients_per_round": 5, "local_steps": 3, "lr": 0.1, "ls_sigma": 1.0},
                  "privacy": {"noise_multiplier": 1.0, "clip_norm": 1.0}},
    "choco": {"algorithm": {"kind": "choco", "rounds": 2, "local_steps": 3, "lr": 0.1, "compressor": {"name": "top_k", "ratio": 0.1}},
              "topology": {"spec": "ring"}},
}


@pytest.mark.parametrize("kind", sorted(ALGORITHMS))
def test_tulip_training_composes_and_agrees_across_runtimes(tmp_path, kind):
    cfg = {**BASE, **ALGORITHMS[kind], "output": {"dir": str(tmp_path / "runs"), "plot": False},
           "robustness": {"training": {"kind": "tulip", "eps": 0.5, "lam": 0.5}}}
    if kind in ("choco", "dpsgd"):
        cfg["data"] = {"num_clients": 8, "partition": {"kind": "iid"}}
    vector = run(cfg, out=tmp_path / "v")
    serial = run(cfg, overrides=["runtime.kind=serial"], out=tmp_path / "s")
    assert_rows_close(read_metrics(serial.run_dir), read_metrics(vector.run_dir))
    plain = run({k: v for k, v in cfg.items() if k != "robustness"}, out=tmp_path / "p")
    assert read_metrics(plain.run_dir)[-1]["train_loss"] != read_metrics(vector.run_dir)[-1]["train_loss"]


def test_objective_refused_where_clients_do_not_run_local_sgd(tmp_path):
    cfg = {**BASE, "algorithm": {"kind": "dp_lssgd", "rounds": 1}, "privacy": {"noise_multiplier": 1.0},
           "output": {"dir": str(tmp_path / "runs"), "plot": False}, "robustness": {"training": {"kind": "tulip"}}}
    with pytest.raises(FedsimError, match="robustness.training"):
        run(cfg)


def test_with_eps_zero_every_objective_trains_exactly_like_plain_training(tmp_path):
    cfg = {**BASE, **ALGORITHMS["fedavg"], "output": {"dir": str(tmp_path / "runs"), "plot": False}}
    plain = read_metrics(run(cfg, out=tmp_path / "plain").run_dir)
    for training in ({"kind": "adversarial", "attack": "pgd", "eps": 0.0, "steps": 2, "random_start": True, "mix": 0.5},
                     {"kind": "gradient_norm", "eps": 0.0, "q": 1}, {"kind": "tulip", "eps": 0.0, "lam": 0.0}):
        robust = run({**cfg, "robustness": {"training": training}}, out=tmp_path / training["kind"])
        assert_rows_close(plain, read_metrics(robust.run_dir))
