"""``fedsim flower export`` and ``fedsim flower deploy`` on real flwr 1.42 processes (loopback ports).

Deployment is slow by construction (Flower polls every few seconds and starts one process
per message), so these runs are short: the quickstart cut to two rounds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import zipfile
from pathlib import Path

import pytest

from fedsim.deploy.cluster import FlowerCluster
from fedsim.deploy.deploy import deploy
from fedsim.errors import FedsimError
from fedsim.experiment import run
from tests.helpers import PYTHON, REPO, flower_processes, subprocess_env

QUICKSTART = REPO / "configs" / "quickstart.yaml"
SHORT = ["algorithm.rounds=2"]


def test_export_writes_an_app_that_flwr_builds(tmp_path: Path, cli) -> None:
    code, _, err = cli("flower", "export", str(QUICKSTART), "-o", str(tmp_path / "app"), "--set", "algorithm.rounds=2")
    assert code == 0, err
    app = tmp_path / "app"
    assert "algorithm:\n  kind: fedavg" in (app / "fedsim_app" / "experiment.yaml").read_text()
    res = subprocess.run(
        [str(Path(PYTHON).parent / "flwr"), "build", "--app", str(app)],
        cwd=tmp_path, capture_output=True, text=True, env={**subprocess_env(), "FLWR_HOME": str(tmp_path / "home")},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (fab,) = tmp_path.glob("*.fab")
    names = zipfile.ZipFile(fab).namelist()
    assert {"fedsim_app/server_app.py", "fedsim_app/client_app.py", "fedsim_app/experiment.yaml"} <= set(names)


def test_export_refuses_a_foreign_nonempty_directory(tmp_path: Path, cli) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = cli("flower", "export", str(QUICKSTART), "-o", str(tmp_path))
    assert code == 2 and "is not empty" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_deploy_on_two_supernodes_over_tls_matches_the_simulation(tmp_path: Path) -> None:
    res = subprocess.run(
        [PYTHON, "-m", "fedsim", "flower", "deploy", str(QUICKSTART), "--supernodes", "2",
         "--tls", "-o", str(tmp_path / "deployed"), *[a for s in SHORT for a in ("--set", s)]],
        capture_output=True, text=True, env=subprocess_env(), timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "round 2: accuracy" in res.stderr
    run_dir = tmp_path / "deployed"
    assert {"config.yaml", "metrics.jsonl", "summary.json", "curves.png"} <= {p.name for p in run_dir.iterdir()}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["clients"], r["supernodes"], r["clients_dropped"]) for r in rows] == [(10, 2, 0)] * 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["runtime"] == "flower" and summary["tls"] is True
    assert "Uvicorn running on https://127.0.0.1" in (run_dir / "flower" / "home" / "logs" / "superlink.log").read_text()

    simulated = run(QUICKSTART, SHORT, out=tmp_path / "simulated")
    print(f"simulated {simulated.final_accuracy:.4f} deployed {summary['final_accuracy']:.4f} "
          f"deploy wall {summary['deploy_wall_s']:.1f} s")
    assert abs(summary["final_accuracy"] - simulated.final_accuracy) <= 0.005
    assert flower_processes(run_dir / "flower" / "home") == []
    assert not (run_dir / "flower" / "home" / "fedsim-cache").exists()


@pytest.mark.slow
def test_a_killed_supernode_is_dropped_and_the_run_completes(tmp_path: Path) -> None:
    cluster: list[FlowerCluster] = []

    def kill_after_first_round(row: dict) -> None:
        if row["round"] == 1:
            cluster[0].kill_supernode(1, signal.SIGTERM)

    result = deploy(
        QUICKSTART, [*SHORT, "flower.min_nodes=1"], supernodes=2, out=tmp_path / "run",
        on_start=cluster.append, progress=kill_after_first_round,
    )
    rows = result.history
    assert result.summary["status"] == "completed" and len(rows) == 2
    assert (rows[0]["supernodes"], rows[0]["clients"]) == (2, 10)
    assert rows[-1]["supernodes"] == 1
    # The survivor (partition 0) answers for its even-numbered clients only.
    assert 0 < rows[-1]["clients"] < 10 and rows[-1]["clients_dropped"] == 10 - rows[-1]["clients"]
    assert len(result.summary["dropped_supernodes"]) == 1
    assert flower_processes(tmp_path / "run" / "flower" / "home") == []


@pytest.mark.slow
def test_too_few_supernodes_fails_with_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    def kill_one(cluster: FlowerCluster) -> None:
        cluster.kill_supernode(0, signal.SIGKILL)

    with pytest.raises(FedsimError, match=r"only 1 live SuperNode\(s\) after waiting 5 s \(flower.node_wait_s\)") as err:
        deploy(QUICKSTART, [*SHORT, "flower.node_wait_s=5"], supernodes=2, out=tmp_path / "run", on_start=kill_one)
    assert "\n" not in str(err.value)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "node_wait_s" in summary["error"]
    assert flower_processes(tmp_path / "run" / "flower" / "home") == []


def test_deploy_on_a_taken_port_is_a_one_line_error(tmp_path: Path, cli) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, _, err = cli("flower", "deploy", str(QUICKSTART), "--port", str(port), "-o", str(tmp_path / "run"))
    assert code == 2 and f"127.0.0.1:{port} is already in use" in err and len(err.strip().splitlines()) == 1
