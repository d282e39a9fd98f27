"""DP-Fed-LS and DP-LSSGD under Flower: the same rounds as the simulator, epsilon included."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.deploy.deploy import deploy
from fedsim.experiment import run
from fedsim.output import read_metrics
from tests.helpers import assert_rows_close, flower_processes, small_config


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


@pytest.mark.slow
def test_dp_lssgd_runs_on_flower_supernodes_as_in_simulation(tmp_path: Path) -> None:
    """Lots, per-example gradients and clipping are client work: SuperNodes compute them."""
    cfg = small_config(tmp_path / "unused")
    cfg["data"]["num_clients"] = 6
    cfg["algorithm"] = {"kind": "dp_lssgd", "rounds": 2, "batch_size": 64, "lr": 0.5, "ls_sigma": 1.0}
    cfg["privacy"] = {"noise_multiplier": 1.0, "clip_norm": 1.0}
    deployed = deploy(cfg, supernodes=2, out=tmp_path / "deployed")
    simulated = run(cfg, out=tmp_path / "simulated")
    sim = read_metrics(simulated.run_dir)
    # The deployed rows add participation counts (SuperNodes answering); compare the simulator's keys.
    dep = [{k: row[k] for k in ref} for row, ref in zip(read_metrics(deployed.run_dir), sim)]
    assert_rows_close(sim, dep)
    assert [r["lot_size"] for r in sim] == [r["lot_size"] for r in dep] and sim[-1]["clients"] == 6
    assert flower_processes(tmp_path / "deployed" / "flower" / "home") == []
