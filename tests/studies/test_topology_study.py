"""The topology study: files, table contents and plots from a tiny real sweep."""

from __future__ import annotations

import csv
import json

from fedsim.studies.topology import rounds_to_target

from tests.helpers import REPO


def test_rounds_to_target_uses_first_round_reaching_it():
    history = [{"round": 1, "node_accuracy_mean": None}, {"round": 2, "node_accuracy_mean": 0.7},
               {"round": 3, "node_accuracy_mean": 0.9}, {"round": 4, "node_accuracy_mean": 0.95}]
    assert rounds_to_target(history, 0.85) == 3 and rounds_to_target(history, 0.99) is None


def test_study_cli_writes_table_json_and_plots(tmp_path, cli):
    code, out, err = cli("study", "topology", str(REPO / "configs" / "topology_study.yaml"),
                         "--topologies", "ring,complete", "--nodes", "4", "--target", "0.5", "--out", str(tmp_path),
                         "--set", "algorithm.rounds=3", "--set", "algorithm.local_steps=2")
    assert code == 0, err
    rows = json.loads((tmp_path / "study.json").read_text())
    assert [(r["topology"], r["nodes"]) for r in rows] == [("ring", 4), ("complete", 4)]
    ring, complete = rows
    assert abs(ring["spectral_gap"] - 2 / 3) < 1e-12 and abs(complete["spectral_gap"] - 1) < 1e-12
    assert len(ring["consensus_distance"]) == 3 and complete["final_consensus_distance"] < 1e-10 < ring["final_consensus_distance"]
    with (tmp_path / "study.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 6 and {"topology", "nodes", "spectral_gap", "round", "consensus_distance", "rounds_to_target"} <= set(table[0])
    assert (tmp_path / "consensus.png").stat().st_size > 5000 and (tmp_path / "rounds_vs_gap.png").stat().st_size > 5000
    assert "ring" in out and "complete" in out


def test_study_checks_every_pair_before_running(tmp_path, cli):
    code, _, err = cli("study", "topology", str(REPO / "configs" / "topology_study.yaml"),
                       "--topologies", "ring,torus", "--nodes", "16,12", "--out", str(tmp_path))
    assert code == 2 and "torus: nodes=12 is not a perfect square" in err
    assert not (tmp_path / "study.json").exists() and not any(tmp_path.iterdir())
