"""``fedsim study robustness`` end to end on a tiny federation (real MNIST)."""

from __future__ import annotations

import csv

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_study_writes_csv_table_and_plot(tmp_path, cli):
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump({
        "seed": 0, "data": {"num_clients": 20, "partition": {"kind": "iid"}}, "model": {"kind": "logistic"},
        "algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 10, "local_steps": 3, "batch_size": 32, "lr": 0.1},
        "runtime": {"kind": "vectorized", "device": "cpu"}, "output": {"dir": str(tmp_path / "runs")},
    }))
    out = tmp_path / "study"
    code, stdout, err = cli("study", "robustness", str(config), "--aggregators", "mean,median,bulyan", "--attacks", "none,sign_flip",
                            "--fractions", "0,0.2", "--seeds", "0,1", "--out", str(out), "--set", "robustness.byzantine.scale=4")
    assert code == 0, err
    rows = list(csv.DictReader((out / "study.csv").open()))
    # 3 aggregators x (f=0, sign_flip f=0.2) x 2 seeds.
    assert len(rows) == 12
    by = {(r["aggregator"], r["fraction"], r["seed"]): r for r in rows}
    # Bulyan needs n >= 4f + 3: with 10 clients per round and f = 2 it refuses, and the study says so.
    assert by[("bulyan", "0.2", "0")]["status"] == "failed" and "4f + 3" in by[("bulyan", "0.2", "0")]["error"]
    assert by[("bulyan", "0.0", "0")]["status"] == "completed"
    assert float(by[("median", "0.2", "0")]["final_accuracy"]) > float(by[("mean", "0.2", "0")]["final_accuracy"])
    table = (out / "study.md").read_text()
    assert "refused" in table and "±" in table and "sign_flip f=0.2" in table
    assert (out / "accuracy_vs_fraction.png").stat().st_size > 1000


def test_study_refuses_unknown_aggregators_before_running(tmp_path, cli):
    code, _, err = cli("study", "robustness", "configs/quickstart.yaml", "--aggregators", "mean,avg", "--out", str(tmp_path / "s"))
    assert code == 2 and "avg" in err and not (tmp_path / "s").exists()
