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
    os.replace(tmp.name, path)
    return path


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """Read ``run_dir/checkpoint.pt``; a missing or foreign file is a user error."""
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise FedsimError(f"--resume: {path} not found (the run needs output.checkpoint_every set to be resumable)")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise FedsimError(f"--resume: {path} is not a fedsim checkpoint (format {_FORMAT})")
    return Checkpoint(payload["rounds_done"], ServerState.from_state_dict(payload["server"]), payload["algorithm"], payload["history"])


def _cpu(obj: Any) -> Any:
    """``obj`` with every tensor moved to the CPU (nested dicts and lists)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj
