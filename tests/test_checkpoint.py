"""Checkpoint and resume: a run interrupted after round k and resumed equals an uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from fedsim.checkpoint import CHECKPOINT_FILE, load_checkpoint
from fedsim.experiment import resume, run
from fedsim.output import read_metrics
from tests.helpers import Interrupt, small_config, without_wall


@pytest.mark.parametrize(
    ("algorithm", "every", "stop"),
    [({"kind": "scaffold"}, 1, 2), ({"kind": "fedadam", "server_lr": 0.05}, 2, 3), ({"kind": "scaffold", "client_state_dir": "STATES"}, 2, 3)],
    ids=["scaffold-every-round", "fedadam-every-2-stopped-between", "scaffold-states-on-disk"],
)
def test_resumed_run_equals_uninterrupted(tmp_path, algorithm, every, stop):
    """SCAFFOLD carries client control variates and the server's c; FedAdam carries moments.

    With checkpoints every 2 rounds and a stop after round 3, round 3 is redone from the round-2
    checkpoint and its first metrics row is replaced, not duplicated.
    """
    algorithm = {k: str(tmp_path / "states") if v == "STATES" else v for k, v in algorithm.items()}
    cfg = small_config(tmp_path, rounds=4, **algorithm)
    cfg["output"]["checkpoint_every"] = every
    full = run(cfg, out=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out=tmp_path / "cut", progress=Interrupt(stop))
    assert len(read_metrics(tmp_path / "cut")) == stop
    assert load_checkpoint(tmp_path / "cut").rounds_done == stop - stop % every
    resumed = resume(tmp_path / "cut")
    assert resumed.run_dir == tmp_path / "cut"
    assert without_wall(read_metrics(resumed.run_dir)) == without_wall(read_metrics(full.run_dir))
    assert torch.equal(resumed.params, full.params)
    assert resumed.summary["status"] == "completed" and resumed.summary["rounds"] == 4
    saved = load_checkpoint(full.run_dir)
    assert saved.rounds_done == 4 and torch.equal(saved.server.params, full.params)


def test_cli_resume(tmp_path, cli):
    cfg = small_config(tmp_path, rounds=3)
    cfg["output"]["checkpoint_every"] = 1
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out=tmp_path / "cut", progress=Interrupt(1))
    code, _, err = cli("run", "--resume", str(tmp_path / "cut"), "--quiet")
    assert code == 0, err
    assert [r["round"] for r in read_metrics(tmp_path / "cut")] == [1, 2, 3]
    assert (tmp_path / "cut" / CHECKPOINT_FILE).is_file()


def test_resume_errors_are_one_line(tmp_path, cli):
    cfg = small_config(tmp_path, rounds=1)
    done = run(cfg, out=tmp_path / "plain")
    code, _, err = cli("run", "--resume", str(done.run_dir))
    assert code == 2 and "checkpoint_every" in err and "Traceback" not in err
    code, _, err = cli("run", str(tmp_path / "x.yaml"), "--resume", str(done.run_dir))
    assert code == 2 and "--resume" in err
