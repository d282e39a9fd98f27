"""Checkpoints: everything a run needs to continue after round k, written atomically.

A checkpoint holds the server state (global parameters and extras such as optimizer moments or
SCAFFOLD's control variate), the algorithm's own state (client states, accountant history) and
the metric rows written so far. It holds no random-number-generator state because there is
none to hold: every stream is derived from (seed, purpose, round, client), so round k+1 draws
the same numbers whether or not the process was restarted in between.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fedsim.algorithms.base import ServerState
from fedsim.errors import FedsimError

__all__ = ["CHECKPOINT_FILE", "Checkpoint", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FILE = "checkpoint.pt"
_FORMAT = 1


@dataclass
class Checkpoint:
    """The state after ``rounds_done`` completed rounds."""

    rounds_done: int
    server: ServerState
    algorithm: dict[str, Any]
    history: list[dict[str, Any]]


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> Path:
    """Write ``run_dir/checkpoint.pt``: to a temporary file first, then renamed over the old one,
    so a crash mid-write leaves the previous checkpoint intact."""
    payload = {
        "format": _FORMAT,
        "rounds_done": checkpoint.rounds_done,
        "server": {k: _cpu(v) for k, v in checkpoint.server.state_dict().items()},
        "algorithm": _cpu(checkpoint.algorithm),
        "history": checkpoint.history,
    }
    path = run_dir / CHECKPOINT_FILE
    with tempfile.NamedTemporaryFile(dir=run_dir, delete=False, suffix=".tmp") as tmp:
        torch.save(payload, tmp)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)  # like every run-folder file (mkstemp makes 0600)
    os.replace(tmp.name, path)
    return path


def load_checkpoint(run_dir: Path, first_checkpoint_round: int | None = None) -> Checkpoint:
    """Read ``run_dir/checkpoint.pt``; a missing, truncated or foreign file is a one-line user error.

    ``first_checkpoint_round`` (the round the run's first checkpoint was due) tells a run that
    stopped before its first checkpoint from one that never had ``output.checkpoint_every`` set.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FedsimError(f"--resume {run_dir}: no such run folder")
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        if first_checkpoint_round is not None:
            raise FedsimError(f"--resume {run_dir}: no checkpoint written yet: the run stopped before round {first_checkpoint_round}")
        raise FedsimError(f"--resume: {path} not found (the run needs output.checkpoint_every set to be resumable)")
    try:
        # weights_only: a checkpoint is tensors, numbers and strings; nothing in it needs arbitrary unpickling.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a damaged file
        reason = " ".join(str(exc).split())[:120] or exc.__class__.__name__
        raise FedsimError(f"--resume: {path} is truncated or not a fedsim checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise FedsimError(f"--resume: {path} is not a fedsim checkpoint (format {_FORMAT})")
    try:
        return Checkpoint(payload["rounds_done"], ServerState.from_state_dict(payload["server"]), payload["algorithm"], payload["history"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise FedsimError(f"--resume: {path} is an incomplete fedsim checkpoint (no {exc})") from None


def _cpu(obj: Any) -> Any:
    """``obj`` with every tensor moved to the CPU (nested dicts and lists)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj
