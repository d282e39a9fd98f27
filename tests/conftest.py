"""Fixtures and process-wide test settings: the real MNIST folder, one torch thread, an in-process CLI runner.

Shared helper functions live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

# Re-exported for test modules written before tests/helpers.py; new code imports from tests.helpers.
from tests.helpers import PYTHON, REPO, small_config, subprocess_env  # noqa: F401

# The tests read the local MNIST copy (FEDSIM_DATA); CI sets it to ../shared/data.
if "FEDSIM_DATA" not in os.environ and (REPO.parent / "shared" / "data" / "mnist").is_dir():
    os.environ["FEDSIM_DATA"] = str(REPO.parent / "shared" / "data")


# One intra-op thread: the suite's tensors are small, and it shares two cores with the Ray workers
# and Flower processes its tests start; torch's default pool then oversubscribes the machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start


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
