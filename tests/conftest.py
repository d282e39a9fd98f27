"""Shared fixtures: the real MNIST folder, small configs, and an in-process CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# The tests read the local MNIST copy (FEDSIM_DATA); CI sets it to ../shared/data.
if "FEDSIM_DATA" not in os.environ and (REPO.parent / "shared" / "data" / "mnist").is_dir():
    os.environ["FEDSIM_DATA"] = str(REPO.parent / "shared" / "data")


# One intra-op thread: the suite's tensors are small, and it shares two cores with the Ray workers
# and Flower processes its tests start; torch's default pool then oversubscribes the machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start


def small_config(tmp_path: Path, **algorithm: object) -> dict:
    """A FedAvg config that runs in about a second: logistic model, 5 of 50 clients, 2 rounds."""
    return {
        "seed": 0,
        "data": {"num_clients": 50, "partition": {"kind": "dirichlet", "alpha": 0.5}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 5, "lr": 0.05, **algorithm},
        "runtime": {"kind": "serial", "device": "cpu"},
        "output": {"dir": str(tmp_path / "run"), "plot": False},
    }


@pytest.fixture
def cli(capsys):
    """Run ``fedsim ARGS`` in process; return (exit code, stdout, stderr)."""
    from fedsim.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable
