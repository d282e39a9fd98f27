"""fedsim.deploy.cluster against real flwr 1.42 processes on loopback ports."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from fedsim.deploy.cluster import FlowerCluster, processes_with_marker
from fedsim.deploy.ports import LOOPBACK
from fedsim.errors import FedsimError

PING_APP = Path(__file__).parent / "flower_ping_app"


def test_taken_superlink_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(FedsimError, match=f"SuperLink port {LOOPBACK}:{port} is already in use") as err:
            FlowerCluster(tmp_path / "home", 1, superlink_port=port).start()
    assert "\n" not in str(err.value)


def test_missing_flwr_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FedsimError, match="flwr is not installed"):
        FlowerCluster(tmp_path / "home", 1).start()


@pytest.mark.slow
def test_cluster_reports_failed_runs_stops_hung_runs_and_leaves_no_process(tmp_path: Path) -> None:
    cluster = FlowerCluster(tmp_path / "home", 2)
    with cluster:
        assert "insecure = true" in (tmp_path / "home" / "config.toml").read_text()
        # flwr run exits 0 for a failing ServerApp; the status must still surface it.
        failing = tmp_path / "fail.toml"
        failing.write_text("fail = true\n")
        with pytest.raises(FedsimError, match=r"ended as finished:failed: .*ping app asked to fail") as err:
            cluster.wait(cluster.submit(PING_APP, failing), timeout=60, poll_s=1.0)
        assert "\n" not in str(err.value)

        # Three nodes never come: the run is stopped, not left hanging.
        hung = tmp_path / "hung.toml"
        hung.write_text("expected-nodes = 3\n")
        hung_id = cluster.submit(PING_APP, hung)
        with pytest.raises(FedsimError, match="did not finish within 2 s .* stopped with flwr stop"):
            cluster.wait(hung_id, timeout=2, poll_s=1.0)
        assert cluster.status(hung_id).status == "finished:stopped"
        assert len(processes_with_marker(cluster.marker)) >= 3
    assert processes_with_marker(cluster.marker) == []
    assert cluster.superlink is None and cluster.nodes == [None, None]


@pytest.mark.slow
def test_flower_processes_die_with_a_killed_caller(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import time

    from tests.helpers import PYTHON, subprocess_env

    script = (
        "import sys, time; from pathlib import Path; from fedsim.deploy.cluster import FlowerCluster\n"
        f"c = FlowerCluster(Path({str(tmp_path / 'home')!r}), 2); c.start(); print(c.marker, flush=True); time.sleep(600)\n"
    )
    caller = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, text=True, env=subprocess_env())
    marker = caller.stdout.readline().strip()
    time.sleep(3)  # let the SuperNodes start their SuperExecs
    assert len(processes_with_marker(marker)) >= 4
    os.kill(caller.pid, signal.SIGKILL)  # no cleanup code runs
    caller.wait()
    deadline = time.monotonic() + 30
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with_marker(marker) == []
