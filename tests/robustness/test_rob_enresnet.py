"""EnResNet runs on real Fashion-MNIST: identical across the serial, vectorized (client by client
and vmapped) and Ray runtimes, bit-identical on rerun, and `fedsim robustness eval` reproduces
the run's robust summary (the evaluation noise is seeded)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from fedsim.data.datasets import load_dataset
from fedsim.experiment import run
from fedsim.output import read_metrics
from tests.helpers import REPO, assert_rows_close, without_wall


@pytest.fixture(scope="module")
def fashion_subset():
    """The first 1200 training and 200 test images of Fashion-MNIST."""
    ds = load_dataset("fashion_mnist")
    return dataclasses.replace(ds, x_train=ds.x_train[:1200], y_train=ds.y_train[:1200], x_test=ds.x_test[:200], y_test=ds.y_test[:200])


def config(tmp_path, **robustness) -> dict:
    """EnResNet-8 (width 4, 2 members, sigma 0.1); 4 of 12 IID clients a round, 3 local steps, 2 rounds."""
    cfg = {
        "seed": 0,
        "data": {"dataset": "fashion_mnist", "num_clients": 12, "partition": {"kind": "iid"}},
        "model": {"kind": "enresnet", "depth": 8, "width": 4, "ensemble": 2, "noise_std": 0.1},
        "algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 4, "local_steps": 3, "batch_size": 16, "lr": 0.05},
        "runtime": {"kind": "vectorized", "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "plot": False},
    }
    if robustness:
        cfg["robustness"] = robustness
    return cfg


def test_enresnet_run_is_the_same_on_serial_and_vectorized_runtimes_and_bit_identical_on_rerun(tmp_path, fashion_subset):
    cfg = config(tmp_path, training={"kind": "adversarial", "attack": "fgsm", "eps": 0.1, "mix": 0.5})
    vector = run(cfg, out=tmp_path / "v", dataset=fashion_subset)  # conv auto: client by client on CPU
    rerun = run(cfg, out=tmp_path / "v2", dataset=fashion_subset)
    serial = run(cfg, overrides=["runtime.kind=serial"], out=tmp_path / "s", dataset=fashion_subset)
    vmapped = run(cfg, overrides=["runtime.conv=vmap"], out=tmp_path / "m", dataset=fashion_subset)
    rows = read_metrics(vector.run_dir)
    assert without_wall(rows) == without_wall(read_metrics(rerun.run_dir))
    assert without_wall(rows) == without_wall(read_metrics(serial.run_dir))
    assert_rows_close(rows, read_metrics(vmapped.run_dir))
    # sigma matters: the same run without noise ends elsewhere.
    quiet = run(cfg, overrides=["model.noise_std=0"], out=tmp_path / "q", dataset=fashion_subset)
    assert read_metrics(quiet.run_dir)[-1]["train_loss"] != rows[-1]["train_loss"]


@pytest.mark.slow
def test_enresnet_run_on_ray_equals_vectorized(tmp_path, fashion_subset):
    pytest.importorskip("ray")
    cfg = config(tmp_path)
    vector = run(cfg, out=tmp_path / "v", dataset=fashion_subset)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)  # Ray workers import this checkout
    try:
        distributed = run(cfg, overrides=["runtime.kind=ray", "runtime.num_actors=2", "runtime.device=cpu"], out=tmp_path / "r",
                          dataset=fashion_subset)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    assert without_wall(read_metrics(vector.run_dir)) == without_wall(read_metrics(distributed.run_dir))


def test_robustness_eval_on_an_enresnet_run_reproduces_its_summary(tmp_path, fashion_subset, cli):
    evaluation = {"attacks": [{"attack": "fgsm", "eps": [0.1]}, {"attack": "ifgsm", "eps": [0.1], "steps": 3}],
                  "distance_norms": [], "samples": 60}
    result = run(config(tmp_path, evaluation=evaluation), out=tmp_path / "e", dataset=fashion_subset)
    summary = json.loads((result.run_dir / "summary.json").read_text())["robustness"]
    assert summary["clean_acc"] >= summary["robust_acc/fgsm/0.1"]
    code, out, err = cli("robustness", "eval", str(result.run_dir), "--attack", "ifgsm", "--eps", "0.1", "--steps", "3",
                         "--samples", "60", "--distance", "", "--json")
    assert code == 0, err
    report = json.loads(out)
    # A fresh process, the full data set reloaded: the same seeded evaluation noise, the same numbers.
    assert report["clean_acc"] == summary["clean_acc"]
    assert report["robust_acc/ifgsm/0.1"] == summary["robust_acc/ifgsm/0.1"]
    assert torch.load(result.run_dir / "params.pt", weights_only=True).numel() == 2 * 5142
