"""DP-Fed-LS under Flower: the ServerApp's accountant reports the simulator's epsilon."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.deploy.deploy import deploy
from fedsim.experiment import run
from tests.helpers import flower_processes, small_config


@pytest.mark.slow
def test_dp_fed_ls_under_flower_reports_the_simulators_epsilon(tmp_path: Path) -> None:
    cfg = small_config(tmp_path / "unused", kind="dp_fed_ls", weighting="uniform", ls_sigma=1.0)
    cfg["data"]["num_clients"] = 40
    cfg["privacy"] = {"noise_multiplier": 1.0, "clip_norm": 0.5}
    deployed = deploy(cfg, supernodes=2, out=tmp_path / "deployed")
    simulated = run(cfg, out=tmp_path / "simulated")
    eps = deployed.summary["privacy"]["epsilon"]
    print(f"epsilon simulated {simulated.summary['privacy']['epsilon']} deployed {eps}")
    assert eps is not None and eps == simulated.summary["privacy"]["epsilon"]
    assert [r["epsilon"] for r in deployed.history] == [r["epsilon"] for r in simulated.history]
    assert abs(deployed.final_accuracy - simulated.final_accuracy) <= 0.005
    assert flower_processes(tmp_path / "deployed" / "flower" / "home") == []
