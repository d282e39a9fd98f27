"""Compression plugged in by configuration: bit-exact byte counts in metrics.jsonl and summary.json,
error-feedback residuals in the client state store, the compressed downlink, and MNIST end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fedsim.compression import build_compressor
from fedsim.compression.links import Downlink
from fedsim.config.loading import load_config
from fedsim.errors import FedsimError
from fedsim.experiment import Experiment, resolve_config, run
from fedsim.output import RunFolder, read_metrics
from tests.helpers import REPO, small_config

D_LOGISTIC = 7850  # 784 * 10 weights + 10 biases


def _run(tmp_path: Path, compression: dict | None, **algorithm: object):
    cfg = small_config(tmp_path, **algorithm)
    if compression is not None:
        cfg["compression"] = compression
    return run(cfg, out=tmp_path / ("run-" + json.dumps(compression, sort_keys=True).replace(" ", "")[:60]))


def test_top_k_uplink_bytes_are_the_exact_bit_count(tmp_path: Path) -> None:
    result = _run(tmp_path, {"uplink": {"kind": "top_k", "k": 50, "feedback": "ef"}})
    rows = read_metrics(result.run_dir)
    per_client_bits = 50 * (32 + math.ceil(math.log2(D_LOGISTIC)))
    assert [r["bytes_up"] for r in rows] == [5 * per_client_bits // 8] * 2
    assert all(r["bytes_up_float32"] == 5 * D_LOGISTIC * 4 for r in rows)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    comp = summary["compression"]
    assert summary["bytes_up"] == comp["bytes_up"] == sum(r["bytes_up"] for r in rows)
    assert comp["bytes_up_ratio"] == pytest.approx(comp["bytes_up"] / (2 * 5 * D_LOGISTIC * 4))
    assert comp["bytes_down_ratio"] == 1.0 and "TopK" in comp["uplink"] and comp["downlink"] is None


def test_identity_uplink_is_the_uncompressed_run_bit_for_bit(tmp_path: Path) -> None:
    plain = _run(tmp_path, None)
    ident = _run(tmp_path, {"uplink": {"kind": "identity", "feedback": "ef"}})
    assert torch.equal(plain.params, ident.params)
    assert plain.summary["bytes_up"] == ident.summary["bytes_up"] and plain.summary["bytes_down"] == ident.summary["bytes_down"]


def test_unbiased_uplink_with_feedback_is_rescaled_and_says_so(tmp_path: Path) -> None:
    result = _run(tmp_path, {"uplink": {"kind": "random_k", "ratio": 0.02, "feedback": "ef"}})
    note = result.summary["compression"]["uplink_feedback"]
    omega = D_LOGISTIC / math.ceil(0.02 * D_LOGISTIC) - 1
    assert "RandomK / (1 + omega)" in note and f"{1 / (1 + omega):.4g}" in note
    assert torch.isfinite(result.params).all()


def test_error_feedback_residual_lives_in_the_client_state_store(tmp_path: Path) -> None:
    cfg = resolve_config(small_config(tmp_path), ["compression.uplink={kind: top_k, k: 20, feedback: ef}"])
    experiment = Experiment(cfg)
    experiment.run(RunFolder.create(tmp_path / "run"))
    states = experiment.algorithm.client_states.state_dict()
    assert states and all(set(s) == {"ef_residual"} for s in states.values())
    # The residual is what top-k left out: (d - 20) coordinates of x + e, the 20 sent ones zero.
    assert all(int((s["ef_residual"] == 0).sum()) >= 20 for s in states.values())


def test_downlink_sends_the_compressed_change_of_the_clients_copy(tmp_path: Path) -> None:
    # Full participation: every client holds last round's copy, so rounds after the first cost one message each.
    result = _run(tmp_path, {"downlink": {"kind": "top_k", "k": 100}}, clients_per_round=50, rounds=3, local_steps=2)
    rows = read_metrics(result.run_dir)
    message = 100 * (32 + math.ceil(math.log2(D_LOGISTIC)))
    assert [r["bytes_down"] for r in rows] == [50 * D_LOGISTIC * 4, 50 * message // 8, 50 * message // 8]
    assert result.summary["compression"]["bytes_down_ratio"] < 0.5


def test_downlink_copy_tracks_the_server_and_catches_up_clients_cheaply() -> None:
    link = Downlink(build_compressor("top_k", k=2), seed=0)
    full, message = 32 * 8, 2 * (32 + 3)
    w = torch.arange(8.0)
    copy, bits = link.broadcast(w, [0, 1], 0)
    assert torch.equal(copy, w) and bits == 2 * full  # first contact: the full model
    change = torch.tensor([0.1, 0, 0, 0, 0, 0, -1.0, 2.0])
    copy, bits = link.broadcast(w + change, [0], 1)
    assert torch.equal(copy, w + change * (change.abs() > 0.5)) and bits == message  # top-2 of the change
    copy, bits = link.broadcast(w + change, [1, 2], 2)
    assert bits == 2 * message + full  # client 1 replays the two messages it missed, client 2 is new
    assert torch.allclose(copy, w + change)  # what top-2 dropped (0.1) went out one round later
    _, bits = link.broadcast(w + change, [3], 2)
    assert bits == full


def test_k_larger_than_the_model_fails_before_the_run_folder(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    cfg["compression"] = {"uplink": {"kind": "top_k", "k": D_LOGISTIC + 1}}
    with pytest.raises(FedsimError, match=f"k={D_LOGISTIC + 1} does not fit the vector length d={D_LOGISTIC}"):
        run(cfg)
    assert not (tmp_path / "run").exists()


def test_decentralized_algorithms_take_their_compressor_in_the_algorithm_section(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "compression_choco_topk.yaml").model_dump(mode="json")
    cfg["compression"] = {"uplink": {"kind": "top_k", "ratio": 0.01}}
    cfg["output"]["dir"] = str(tmp_path / "run")
    with pytest.raises(FedsimError, match="CHOCO-SGD takes algorithm.compressor"):
        run(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "compression,fragment",
    [
        ({"uplink": {"kind": "topk"}}, "allowed: identity, top_k"),
        ({"uplink": {"kind": "qsgd", "levels": 0}}, "s=0"),
        ({"uplink": {"kind": "powersgd", "rank": 0}}, "rank=0"),
        ({"uplink": {"kind": "sign", "ratio": 0.1}}, "compression.uplink.ratio: unknown key"),
        ({"downlink": {"kind": "qsgd", "levels": 3, "feedback": "ef"}}, "allowed: none"),
        # A biased operator without delta-contraction: EF's guarantee does not apply (issue #14).
        ({"uplink": {"kind": "powersgd", "rank": 2, "feedback": "ef"}}, "PowerSGD is biased"),
        ({"uplink": {"kind": "sparsify_quantize", "levels": 1, "ratio": 0.1, "feedback": "ef21"}},
         "SparsifyQuantize is biased"),
    ],
)
def test_bad_compression_section_is_one_line(tmp_path: Path, cli, compression: dict, fragment: str) -> None:
    import yaml

    cfg = small_config(tmp_path)
    cfg["compression"] = compression
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = cli("run", str(path))
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name", ["compression_topk_ef", "compression_qsgd", "compression_powersgd", "compression_choco_topk"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.compression.uplink is not None or cfg.algorithm.compressor["name"] == "top_k"


@pytest.mark.slow
def test_mnist_top_k_with_error_feedback_matches_uncompressed_at_a_fiftieth_of_the_bytes(tmp_path: Path) -> None:
    def fedavg(compression: dict | None):
        cfg = {
            "seed": 0,
            "data": {"num_clients": 20, "partition": {"kind": "iid"}},
            "model": {"kind": "logistic"},
            "algorithm": {"kind": "fedavg", "rounds": 30, "clients_per_round": 5, "lr": 0.1, "local_steps": 10},
            "runtime": {"kind": "serial", "device": "cpu"},
            "evaluation": {"every": 30},
            "output": {"plot": False},
        }
        if compression is not None:
            cfg["compression"] = compression
        return run(cfg, out=tmp_path / str(len(list(tmp_path.iterdir())))).summary

    plain = fedavg(None)
    ef = fedavg({"uplink": {"kind": "top_k", "ratio": 0.01, "feedback": "ef"}})
    no_ef = fedavg({"uplink": {"kind": "top_k", "ratio": 0.01}})
    assert plain["bytes_up"] >= 50 * ef["bytes_up"]
    assert ef["final_accuracy"] >= plain["final_accuracy"] - 0.02
    assert no_ef["final_accuracy"] < plain["final_accuracy"] - 0.02  # fails the bar EF passes
    assert no_ef["final_accuracy"] < ef["final_accuracy"] - 0.01
