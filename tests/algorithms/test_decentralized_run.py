"""Decentralized runs end to end: config, CLI errors, and D-PSGD on MNIST over a ring and a complete graph."""

from __future__ import annotations

import json

import pytest

from fedsim.experiment import run


def _config(tmp_path, **over):
    cfg = {
        "seed": 0,
        "data": {"num_clients": 8, "partition": {"kind": "shards", "shards_per_client": 2}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "dpsgd", "rounds": 2, "local_steps": 2, "batch_size": 32, "lr": 0.05},
        "topology": {"spec": "ring"},
        "runtime": {"kind": "serial", "device": "cpu"},
        "output": {"dir": str(tmp_path / "run"), "plot": False},
        "evaluation": {"every": 1},
    }
    for key, value in over.items():
        cfg[key] = {**cfg[key], **value}
    return cfg


def test_run_writes_decentralized_metrics(tmp_path):
    result = run(_config(tmp_path, algorithm={"form": "cta"}, data={"num_clients": 9}, topology={"spec": "torus", "mixing": "lazy"}))
    last = result.history[-1]
    assert {"consensus_distance", "node_accuracy_mean", "node_accuracy_min", "bytes_per_node"} <= set(last)
    assert last["bytes_per_node"] == 4 * 4 * 7850 and last["bytes_down"] == 0  # torus: 4 neighbours
    assert last["node_accuracy_min"] <= last["node_accuracy_mean"]


@pytest.mark.parametrize("override,message", [
    ("topology.spec=moebius", "topology.spec: topology 'moebius' is neither a YAML file nor a family"),
    ("topology.mixing=uniform", "needs a regular graph"),
    ("algorithm.form=zigzag", "algorithm.form: 'zigzag' is not allowed"),
    ("data.num_clients=10", "torus: nodes=10 is not a perfect square"),
    ("algorithm={kind: choco, compressor: {name: top_q}}", "algorithm.compressor: unknown compressor 'top_q'"),
    ("algorithm={kind: choco, gamma: 1.5}", "algorithm.gamma"),
])
def test_bad_topology_config_is_one_line(tmp_path, cli, override, message):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(_config(tmp_path, topology={"spec": "torus" if "10" in override else "star"})))
    code, _, err = cli("run", str(path), "-q", "--set", override)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_choco_run_with_top_k(tmp_path):
    cfg = _config(tmp_path, algorithm={"kind": "choco", "gamma": 0.5, "compressor": {"name": "top_k", "ratio": 0.1}})
    last = run(cfg).history[-1]
    assert last["bytes_per_node"] < 0.3 * 2 * 4 * 7850  # 10% of the values plus their indices, to 2 neighbours
    assert last["consensus_distance"] > 0


@pytest.mark.slow
def test_dpsgd_mnist_ring_vs_complete(tmp_path):
    """Both graphs learn MNIST; the ring's nodes disagree far more than the complete graph's (exact average)."""
    out = {}
    for spec in ("ring", "complete"):
        cfg = _config(tmp_path, algorithm={"rounds": 12, "local_steps": 10, "lr": 0.05},
                      data={"num_clients": 16, "partition": {"kind": "dirichlet", "alpha": 0.3}},
                      topology={"spec": spec}, output={"dir": str(tmp_path / spec)}, evaluation={"every": 12})
        out[spec] = run(cfg)
    for spec, result in out.items():
        assert result.final_accuracy >= 0.85, (spec, result.final_accuracy)
    ring, complete = out["ring"].history[-1], out["complete"].history[-1]
    assert ring["consensus_distance"] > 100 * max(complete["consensus_distance"], 1e-12)
    assert ring["node_accuracy_mean"] < complete["node_accuracy_mean"]


def test_choco_resumes_exactly(tmp_path):
    """x_hat (server extras) and the error-feedback residuals (algorithm state) survive a checkpoint."""
    import torch

    from fedsim.experiment import resume
    from fedsim.output import read_metrics

    from tests.helpers import Interrupt, without_wall

    cfg = _config(tmp_path, algorithm={"kind": "choco", "rounds": 4, "gamma": 0.5,
                                       "compressor": {"name": "top_k", "ratio": 0.05, "feedback": "ef"}},
                  output={"checkpoint_every": 1}, evaluation={"every": 4})
    full = run(cfg, out=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out=tmp_path / "cut", progress=Interrupt(2))
    resumed = resume(tmp_path / "cut")
    assert without_wall(read_metrics(resumed.run_dir)) == without_wall(read_metrics(full.run_dir))
    assert torch.equal(resumed.params, full.params)
