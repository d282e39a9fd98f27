"""Persistent per-client state (control variates, error-feedback residuals), kept across rounds.

By default states live in memory. With ``directory`` set, every named entry is one fixed-size
row per client in a flat file ``<name>.bin`` (``num_clients`` rows, allocated sparsely, so only
clients that ever held state use disk), read and written with positional I/O. Only the rows of
the current cohort are ever in memory: 10,000 clients with a 100k-float state take 4 GB of disk
and almost no RAM. Positional reads and writes rather than ``numpy.memmap`` because pages of a
memory map count towards the process's resident memory until the kernel evicts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["ClientStateStore"]


class ClientStateStore:
    """Client id -> dict of named tensors, created lazily (a client never sampled costs nothing).

    A client's state survives the rounds in which it is not sampled.

    Parameters
    ----------
    directory : path or None (default: None)
        Spill states to files in this folder instead of holding them in memory.
    num_clients : int or None (default: None)
        Number of clients; required with ``directory`` (it fixes the row count of each file).
    """

    def __init__(self, directory: str | Path | None = None, num_clients: int | None = None) -> None:
        self._states: dict[int, dict[str, torch.Tensor]] = {}
        self._files: dict[str, tuple[int, torch.Size, torch.dtype]] = {}  # name -> (fd, shape, dtype)
        self._keys: dict[int, tuple[str, ...]] = {}  # client -> names it holds on disk
        self.directory = Path(directory) if directory is not None else None
        self.num_clients = num_clients
        if self.directory is not None:
            if num_clients is None:
                raise ValueError("ClientStateStore: num_clients is required with a directory")
            self.directory.mkdir(parents=True, exist_ok=True)

    def get(self, client: int) -> dict[str, torch.Tensor]:
        if self.directory is None:
            return dict(self._states.get(client, {}))
        return {name: self._read(name, client) for name in self._keys.get(client, ())}

    def put(self, client: int, state: dict[str, torch.Tensor]) -> None:
        if not state:
            return
        if self.directory is None:
            self._states[client] = {k: v.detach().cpu() for k, v in state.items()}
            return
        for name, value in state.items():
            self._write(name, client, value.detach().cpu())
        self._keys[client] = tuple(state)

    def __len__(self) -> int:
        return len(self._states) if self.directory is None else len(self._keys)

    def state_dict(self) -> dict[int, dict[str, torch.Tensor]]:
        clients = self._states if self.directory is None else self._keys
        return {c: self.get(c) for c in clients}

    def load_state_dict(self, states: dict[int, dict[str, torch.Tensor]]) -> None:
        self._states, self._keys = {}, {}
        for c, s in states.items():
            self.put(int(c), dict(s))

    def close(self) -> None:
        """Close the spill files (they stay on disk)."""
        for fd, _, _ in self._files.values():
            os.close(fd)
        self._files = {}

    # ------------------------------------------------------------------ disk rows

    def _file(self, name: str, like: torch.Tensor) -> tuple[int, torch.Size, torch.dtype]:
        """The spill file of entry ``name``, created at its first write with ``like``'s row size."""
        if name not in self._files:
            fd = os.open(self.directory / f"{name}.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)  # type: ignore[operator]
            os.ftruncate(fd, self._row_bytes(like.shape, like.dtype) * self.num_clients)  # type: ignore[operator]
            self._files[name] = (fd, like.shape, like.dtype)
        return self._files[name]

    @staticmethod
    def _row_bytes(shape: torch.Size, dtype: torch.dtype) -> int:
        return int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()

    def _write(self, name: str, client: int, value: torch.Tensor) -> None:
        fd, shape, dtype = self._file(name, value)
        if value.shape != shape or value.dtype != dtype:
            raise ValueError(f"state entry {name!r}: expected {tuple(shape)} {dtype}, got {tuple(value.shape)} {value.dtype}")
        row = self._row_bytes(shape, dtype)
        os.pwrite(fd, value.reshape(-1).view(torch.uint8).numpy().tobytes(), row * client)

    def _read(self, name: str, client: int) -> torch.Tensor:
        fd, shape, dtype = self._files[name]
        row = self._row_bytes(shape, dtype)
        raw = bytearray(os.pread(fd, row, row * client))
        return torch.frombuffer(raw, dtype=dtype).reshape(shape)

    def __del__(self) -> None:
        self.close()
