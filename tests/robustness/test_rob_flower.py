"""A robust objective, Byzantine clients and a robust aggregator under Flower: the same rounds as the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.deploy.deploy import deploy
from fedsim.experiment import run
from fedsim.output import read_metrics
from tests.helpers import assert_rows_close, flower_processes, small_config


@pytest.mark.slow
def test_adversarial_training_with_byzantine_clients_under_flower_matches_the_simulation(tmp_path: Path) -> None:
    # The objective travels in the pickled client task and PGD's random start comes from the
    # client's derived generator, so SuperNodes compute exactly what the serial runtime does.
    cfg = small_config(tmp_path / "unused", clients_per_round=10, local_steps=3,
                       aggregator={"kind": "median", "assumed_fraction": 0.2})
    cfg["data"] = {"num_clients": 10, "partition": {"kind": "iid"}}
    cfg["algorithm"]["participation"] = {"kind": "full"}
    cfg["robustness"] = {"training": {"kind": "adversarial", "attack": "pgd", "eps": 0.1, "steps": 2, "random_start": True, "mix": 0.5},
                         "byzantine": {"fraction": 0.2, "attack": "sign_flip", "scale": 4.0}}
    deployed = deploy(cfg, supernodes=2, out=tmp_path / "deployed")
    simulated = run(cfg, out=tmp_path / "simulated")
    sim = read_metrics(simulated.run_dir)
    # The deployed rows add participation counts (SuperNodes answering); compare the simulator's keys.
    dep = [{k: row[k] for k in ref} for row, ref in zip(read_metrics(deployed.run_dir), sim)]
    assert_rows_close(sim, dep)
    plain = run({k: v for k, v in cfg.items() if k != "robustness"}, out=tmp_path / "plain")
    assert read_metrics(plain.run_dir)[-1]["train_loss"] != sim[-1]["train_loss"]
    assert flower_processes(tmp_path / "deployed" / "flower" / "home") == []
