"""End to end: the run folder, determinism, Ctrl-C, the Python API, and accuracy on real MNIST."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import yaml

import fedsim
from fedsim.output import read_metrics
from tests.helpers import PYTHON, REPO, small_config, subprocess_env, without_wall

METRIC_KEYS = {"round", "test_accuracy", "test_loss", "train_loss", "clients", "bytes_up", "bytes_down", "wall_s"}
SUMMARY_KEYS = {"final_accuracy", "best_accuracy", "rounds", "wall_s", "seed", "fedsim_version", "config_sha256"}


def test_run_folder_contents_and_determinism(tmp_path):
    cfg = small_config(tmp_path)
    cfg["output"]["plot"] = True
    a = fedsim.run(cfg, out=tmp_path / "a")
    b = fedsim.run(cfg, out=tmp_path / "b")
    for res in (a, b):
        assert {p.name for p in res.run_dir.iterdir()} == {"config.yaml", "metrics.jsonl", "summary.json", "curves.png"}
    rows = read_metrics(a.run_dir)
    assert len(rows) == 2 and all(METRIC_KEYS <= set(r) for r in rows)
    assert rows[0]["bytes_up"] == 5 * 7850 * 4  # 5 clients x 7,850 float32 parameters
    summary = json.loads((a.run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and summary["status"] == "completed"
    assert without_wall(rows) == without_wall(read_metrics(b.run_dir))
    assert summary["config_sha256"] == b.summary["config_sha256"]
    # The resolved config reproduces the run.
    c = fedsim.run(a.run_dir / "config.yaml", out=tmp_path / "c")
    assert without_wall(read_metrics(c.run_dir)) == without_wall(rows)
    # A different seed gives a different run.
    d = fedsim.run(cfg, overrides=["seed=1"], out=tmp_path / "d")
    assert without_wall(read_metrics(d.run_dir)) != without_wall(rows)


def test_existing_run_folder_is_not_overwritten(tmp_path):
    cfg = small_config(tmp_path, rounds=1)
    first = fedsim.run(cfg)
    second = fedsim.run(cfg)
    assert first.run_dir != second.run_dir and second.run_dir.name == "run-2"


def test_custom_model_and_partition(tmp_path):
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10, bias=False)

        def forward(self, x):
            return self.fc(x)

    parts = [list(range(i * 100, (i + 1) * 100)) for i in range(50)]
    res = fedsim.run(small_config(tmp_path, rounds=1), model=Tiny(), partition=parts)
    assert res.params.numel() == 7840
    assert read_metrics(res.run_dir)[0]["bytes_up"] == 5 * 7840 * 4


def test_ctrl_c_keeps_completed_rounds(tmp_path):
    cfg = small_config(tmp_path, rounds=500, clients_per_round=20)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [PYTHON, "-m", "fedsim", "run", str(path), "--quiet"], env=subprocess_env(), cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 600  # generous: a loaded machine can take minutes to import torch and load MNIST
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    assert metrics.exists(), "the run never completed a round"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows = read_metrics(tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 2 <= summary["rounds"] == len(rows) < 500
    assert [r["round"] for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.slow
def test_quickstart_reaches_90_percent(tmp_path):
    res = fedsim.run(REPO / "configs" / "quickstart.yaml", out=tmp_path / "q")
    assert res.summary["rounds"] == 20
    assert res.final_accuracy >= 0.90, res.final_accuracy
