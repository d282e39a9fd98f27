"""SIGTERM ends a run like Ctrl-C: completed rounds kept, ``status: interrupted``, exit code 143."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import yaml

from tests.helpers import PYTHON, REPO, small_config, subprocess_env


def test_sigterm_after_first_round(tmp_path):
    cfg = small_config(tmp_path, rounds=500)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    metrics = tmp_path / "run" / "metrics.jsonl"
    proc = subprocess.Popen([PYTHON, "-m", "fedsim", "run", str(path), "--quiet"], cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 1):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no round completed in 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert summary["status"] == "interrupted"
    assert 1 <= summary["rounds"] == len(rows) < 500
    assert [r["round"] for r in rows] == list(range(1, len(rows) + 1))
