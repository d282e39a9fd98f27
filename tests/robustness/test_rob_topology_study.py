"""``fedsim study topology`` with Byzantine nodes and robust gossip rules (real MNIST, tiny)."""

from __future__ import annotations

import csv
import json

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

STUDY = REPO / "configs" / "topology_study.yaml"
SMALL = ["algorithm.rounds=4", "algorithm.local_steps=5", "data.partition.kind=iid", "evaluation.every=4",
         "robustness.byzantine.scale=4", "algorithm.robust_gossip.tau=0.1"]


def test_topology_study_crosses_topologies_with_byzantine_fractions_and_gossip_rules(tmp_path, cli):
    # Measured (load ~10, 1 thread): honest accuracy at f = 0.2 (2 of 10 nodes, sign flip x4):
    # plain 0.070 (ring) / 0.093 (complete), clipped 0.855 / 0.855; at f = 0 all 0.856-0.857.
    code, out, err = cli("study", "topology", str(STUDY), "--topologies", "ring,complete", "--nodes", "10",
                         "--byzantine-fraction", "0,0.2", "--gossip-rules", "plain,clipped", "--out", str(tmp_path),
                         *[a for s in SMALL for a in ("--set", s)])
    assert code == 0, err
    rows = json.loads((tmp_path / "study.json").read_text())
    cells = {(r["topology"], r["byzantine_fraction"], r["gossip_rule"]): r for r in rows}
    assert len(rows) == 8 and len(cells) == 8
    for topology in ("ring", "complete"):
        clean, attacked = cells[(topology, 0.0, "plain")], cells[(topology, 0.2, "plain")]
        robust = cells[(topology, 0.2, "clipped")]
        assert clean["byzantine_nodes"] == 0 and attacked["byzantine_nodes"] == 2 and attacked["attack"] == "sign_flip"
        # The honest nodes' model: plain gossip is dragged away, ClippedGossip keeps within 0.05 of the clean run.
        assert attacked["final_accuracy"] < 0.5 < robust["final_accuracy"]
        assert robust["final_accuracy"] > clean["final_accuracy"] - 0.05
        assert robust["final_node_accuracy_min"] > 0.7
    # On the ring the attackers also pull the honest nodes apart (the complete graph averages exactly).
    assert cells[("ring", 0.2, "clipped")]["final_consensus_distance"] < cells[("ring", 0.2, "plain")]["final_consensus_distance"]
    with (tmp_path / "study.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert {"byzantine_fraction", "byzantine_nodes", "attack", "gossip_rule"} <= set(table[0]) and len(table) == 8 * 4
    assert "honest" in out


def test_topology_study_checks_byzantine_cells_before_running(tmp_path, cli):
    code, _, err = cli("study", "topology", str(STUDY), "--topologies", "ring", "--nodes", "8", "--gossip-rules", "trimmed_mean",
                       "--set", "algorithm.robust_gossip.trim=2", "--out", str(tmp_path / "a"))
    assert code == 2 and "trim=2 needs closed neighbourhoods of more than 4 nodes" in err and not (tmp_path / "a").exists()
    code, _, err = cli("study", "topology", str(STUDY), "--topologies", "ring", "--nodes", "8", "--byzantine-fraction", "0.2",
                       "--set", "algorithm.kind=gossip", "--out", str(tmp_path / "b"))
    assert code == 2 and "need algorithm.kind dpsgd" in err and not (tmp_path / "b").exists()
    code, _, err = cli("study", "topology", str(STUDY), "--gossip-rules", "median", "--out", str(tmp_path / "c"))
    assert code == 2 and "'median' is unknown" in err


def test_consensus_distance_with_byzantine_nodes_is_the_honest_nodes():
    import torch

    from fedsim.algorithms.base import ServerState
    from fedsim.algorithms.dpsgd import DPSGD
    from fedsim.client import ClientTask, LocalSGD
    from fedsim.robustness.byzantine import ByzantineClients
    from fedsim.topology.gossip import consensus_distance
    from fedsim.topology.specs import build_topology

    algorithm = DPSGD(topology=build_topology("ring", 6), task=ClientTask(LocalSGD(lr=0.1, batch_size=8)))
    algorithm.byzantine = ByzantineClients((1, 4))
    x = torch.randn(6, 3, dtype=torch.float64)
    x[[1, 4]] = 1e6
    row = algorithm.round_metrics(ServerState(x), 0, 64, None)
    assert row.extra["consensus_distance"] == pytest.approx(consensus_distance(x[[0, 2, 3, 5]]))
