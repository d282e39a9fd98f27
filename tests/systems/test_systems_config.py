"""The ``systems:`` section and the ``fedbuff`` / ``fedasync`` kinds from a config, end to end."""

from __future__ import annotations

import json

import pytest

import fedsim
from tests.helpers import small_config, without_wall

SYSTEMS = {"devices": {"kind": "lognormal", "speed": 50.0, "speed_sigma": 1.0}}


def rows_of(result):
    return [{k: v for k, v in r.items() if k not in ("sim_time_s", "clients_dropped", "clients_stale")} for r in without_wall(result.history)]


def test_clock_without_deadline_leaves_fedavg_unchanged(tmp_path):
    plain = fedsim.run(small_config(tmp_path / "a"))
    timed = fedsim.run({**small_config(tmp_path / "b"), "systems": SYSTEMS})
    assert rows_of(plain) == rows_of(timed)
    times = [r["sim_time_s"] for r in timed.history]
    assert times == sorted(times) and times[0] > 0


@pytest.mark.parametrize("kind, extra", [("fedbuff", {"buffer_size": 2}), ("fedasync", {"alpha": 0.5})])
def test_asynchronous_kinds_run_and_write_strict_json(tmp_path, kind, extra):
    cfg = small_config(tmp_path, kind=kind, rounds=3, **extra)
    cfg["systems"] = SYSTEMS
    result = fedsim.run(cfg)
    assert [r["round"] for r in result.history] == [1, 2, 3]
    assert all(r["sim_time_s"] > 0 for r in result.history)
    assert result.summary["final_accuracy"] is not None

    def refuse(token):
        raise ValueError(token)

    for line in (result.run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"algorithm": {"kind": "fedbuff"}}, "needs a systems: section"),
        ({"algorithm": {"kind": "fedbuff", "buffer_size": 9}, "systems": SYSTEMS}, "algorithm.buffer_size: 9 exceeds clients_per_round=5"),
        ({"algorithm": {"kind": "gossip", "rounds": 2}, "systems": SYSTEMS}, "does not run on the simulated clock"),
        ({"systems": {"deadline_s": -1}}, "deadline_s"),
        ({"systems": {"availability": {"kind": "diurnal", "online_fraction": 0}}}, "online_fraction"),
    ],
)
def test_bad_systems_settings_are_one_line_errors(tmp_path, cli, patch, message):
    import yaml

    cfg = small_config(tmp_path)
    for key, value in patch.items():
        merge = key == "algorithm" and value["kind"] != "gossip"  # gossip takes none of FedAvg's keys
        cfg[key] = {**cfg[key], **value} if merge else value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = cli("run", str(path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_sim_time_axis_of_fedsim_plot(tmp_path, cli):
    plain = fedsim.run(small_config(tmp_path / "a"))
    timed = fedsim.run({**small_config(tmp_path / "b"), "systems": SYSTEMS})
    code, _, _ = cli("plot", str(timed.run_dir), "-o", str(tmp_path / "t.png"), "--x", "sim_time_s")
    assert code == 0 and (tmp_path / "t.png").stat().st_size > 0
    code, _, err = cli("plot", str(timed.run_dir), str(plain.run_dir), "-o", str(tmp_path / "u.png"), "--x", "sim_time_s")
    assert code == 2 and "without a systems: section" in err


def test_adpsgd_and_pairwise_gossip_from_a_config(tmp_path):
    base = {
        "seed": 0,
        "data": {"num_clients": 8, "partition": {"kind": "iid"}},
        "model": {"kind": "logistic"},
        "topology": {"spec": "ring"},
        "runtime": {"kind": "serial", "device": "cpu"},
        "systems": SYSTEMS,
        "output": {"plot": False},
    }
    ad = fedsim.run({**base, "algorithm": {"kind": "adpsgd", "rounds": 2, "local_steps": 2}}, out=tmp_path / "ad")
    assert ad.summary["final_accuracy"] > 0.5
    assert all(r["sim_time_s"] > 0 and r["consensus_distance"] >= 0 for r in ad.history)
    pg = fedsim.run({**base, "algorithm": {"kind": "async_gossip", "rounds": 2}}, out=tmp_path / "pg")
    assert pg.history[-1]["consensus_distance"] == 0.0  # every node starts from the same model
