"""Start-up without the cyclic garbage collector: it is back on afterwards, and only the ``fedsim`` process freezes."""

from __future__ import annotations

import gc
import subprocess

import pytest

from fedsim.cli.app import start_up
from tests.helpers import PYTHON, REPO, subprocess_env


def test_start_up_turns_the_collector_back_on_without_freezing_a_host_process() -> None:
    frozen = gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with start_up():
            assert not gc.isenabled()
            raise RuntimeError("a failed start-up")
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # pytest is not the fedsim process: nothing of it frozen


def test_the_fedsim_process_freezes_what_start_up_imported() -> None:
    code = ("import gc\nfrom fedsim.cli.app import freeze_start_up, start_up\nfreeze_start_up()\n"
            "with start_up():\n    import torch\nprint(gc.isenabled(), gc.get_freeze_count())")
    out = subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True, cwd=REPO, env=subprocess_env()).stdout
    enabled, frozen = out.split()
    assert enabled == "True"
    assert int(frozen) > 50_000  # torch's objects: out of every later collection's way
