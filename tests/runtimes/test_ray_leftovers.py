"""fedsim's own local Ray start is quiet and leaves no process behind, even when the run is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import yaml

from fedsim.runtimes.ray_runtime import _proc_stats
from tests.helpers import PYTHON, REPO, small_config, subprocess_env

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # starts Ray: a minute or more on two loaded cores


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every process below ``root``."""
    stats = _proc_stats()
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier and pid not in found}
        found.update({pid: stats[pid][1] for pid in frontier})
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()[:60]
    except OSError:
        return b""


def test_sigkilled_ray_run_leaves_nothing(tmp_path):
    cfg = small_config(tmp_path, rounds=500)
    cfg["runtime"] = {"kind": "ray", "num_actors": 1, "device": "cpu"}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    metrics = tmp_path / "run" / "metrics.jsonl"
    proc = subprocess.Popen([PYTHON, "-m", "fedsim", "run", str(path), "--quiet"], cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 1):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no round completed in 240 s"
            time.sleep(0.1)
        while True:  # the raylet starts its agents in the background: wait until they are up
            started = descendants(proc.pid)
            names = {pid: _cmdline(pid) for pid in started}
            if any(b"Agent" in n for n in names.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert any(b"Agent" in n for n in names.values()), names
        time.sleep(2.5)  # the reaper looks for new processes every 2 s
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert b"Token authentication" not in err
    deadline = time.monotonic() + 15  # Ray's agents alone would poll for their dead raylet for 30 s and more
    while True:
        stats = _proc_stats()
        alive = {pid: names.get(pid) for pid, start in started.items() if pid in stats and stats[pid][1] == start}
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert alive == {}
