"""Persistent per-client state (control variates, error-feedback residuals), kept across rounds.

By default states live in memory. With ``directory`` set, every named entry is one fixed-size
row per client in a flat file ``<name>.bin`` (``num_clients`` rows, allocated sparsely, so only
clients that ever held state use disk), read and written with positional I/O. Only the rows of
the current cohort are ever in memory: 10,000 clients with a 100k-float state take 4 GB of disk
and almost no RAM. Positional reads and writes rather than ``numpy.memmap`` because pages of a
memory map count towards the process's resident memory until the kernel evicts them.

A checkpoint of an on-disk store streams too: :meth:`ClientStateStore.state_dict` copies the
spill files file-to-file into a numbered snapshot folder and returns only their description,
so checkpointing 10,000 clients' states never holds them in memory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ClientStateStore", "SNAPSHOT_KEY"]

#: The key under which :meth:`ClientStateStore.state_dict` describes a streamed snapshot.
SNAPSHOT_KEY = "__spilled_snapshot__"


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
        self._snapshots = 0  # number of the last snapshot written by state_dict
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

    def state_dict(self) -> dict[Any, Any]:
        """Every client's state; for an on-disk store, a streamed snapshot of the spill files.

        The on-disk form is ``{SNAPSHOT_KEY: {"folder", "entries", "keys"}}``: the files are copied
        (kernel-side, in chunks) to ``<directory>/snapshot-<k>/`` and the dict names them. The two
        newest snapshots are kept, so the one a checkpoint file refers to survives until a newer
        checkpoint has certainly replaced it.
        """
        if self.directory is None:
            return {c: self.get(c) for c in self._states}
        self._snapshots += 1
        folder = self.directory / f"snapshot-{self._snapshots}"
        tmp = self.directory / f".snapshot-{self._snapshots}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name in self._files:
            os.fsync(self._files[name][0])
            shutil.copyfile(self.directory / f"{name}.bin", tmp / f"{name}.bin")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        shutil.rmtree(self.directory / f"snapshot-{self._snapshots - 2}", ignore_errors=True)
        entries = {name: [list(shape), str(dtype).removeprefix("torch.")] for name, (_, shape, dtype) in self._files.items()}
        keys = {int(c): list(names) for c, names in self._keys.items()}
        return {SNAPSHOT_KEY: {"folder": str(folder.resolve()), "number": self._snapshots, "entries": entries, "keys": keys}}

    def load_state_dict(self, states: dict[Any, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a snapshot is copied back file to file)."""
        self._states, self._keys = {}, {}
        if SNAPSHOT_KEY in states:
            self._restore(states[SNAPSHOT_KEY])
            return
        for c, s in states.items():
            self.put(int(c), dict(s))

    def _restore(self, snap: dict[str, Any]) -> None:
        folder = Path(snap["folder"])
        if self.directory is None:  # into memory: read each client's rows from the snapshot files
            for c, names in snap["keys"].items():
                state = {}
                for name in names:
                    shape, dtype = snap["entries"][name]
                    shape, dtype = torch.Size(shape), getattr(torch, dtype)
                    row = self._row_bytes(shape, dtype)
                    with open(folder / f"{name}.bin", "rb") as fh:
                        fh.seek(row * int(c))
                        state[name] = torch.frombuffer(bytearray(fh.read(row)), dtype=dtype).reshape(shape)
                self._states[int(c)] = state
            return
        self.close()
        self._snapshots = max(self._snapshots, int(snap["number"]))
        for name, (shape, dtype) in snap["entries"].items():
            path = self.directory / f"{name}.bin"
            shutil.copyfile(folder / f"{name}.bin", path)
            self._files[name] = (os.open(path, os.O_RDWR), torch.Size(shape), getattr(torch, dtype))
        self._keys = {int(c): tuple(names) for c, names in snap["keys"].items()}

    def close(self) -> None:
        """Close the spill files (they stay on disk)."""
        for fd, _, _ in self._files.values():
            os.close(fd)
        self._files = {}

    # ------------------------------------------------------------------ disk rows

    def _file(self, name: str, like: torch.Tensor) -> tuple[int, torch.Size, torch.dtype]:
        """The spill file of entry ``name``, created at its first write with ``like``'s row size."""
        if name not in self._files:
            assert self.directory is not None and self.num_clients is not None  # disk rows exist only in spilling mode
            fd = os.open(self.directory / f"{name}.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(fd, self._row_bytes(like.shape, like.dtype) * self.num_clients)
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
