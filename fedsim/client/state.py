"""Persistent per-client state (control variates, error-feedback residuals), kept across rounds."""

from __future__ import annotations

import torch

__all__ = ["ClientStateStore"]


class ClientStateStore:
    """Client id -> dict of named tensors, created lazily (a client never sampled costs nothing).

    A client's state survives the rounds in which it is not sampled.
    """

    def __init__(self) -> None:
        self._states: dict[int, dict[str, torch.Tensor]] = {}

    def get(self, client: int) -> dict[str, torch.Tensor]:
        return dict(self._states.get(client, {}))

    def put(self, client: int, state: dict[str, torch.Tensor]) -> None:
        if state:
            self._states[client] = {k: v.detach().cpu() for k, v in state.items()}

    def __len__(self) -> int:
        return len(self._states)

    def state_dict(self) -> dict[int, dict[str, torch.Tensor]]:
        return {c: dict(s) for c, s in self._states.items()}

    def load_state_dict(self, states: dict[int, dict[str, torch.Tensor]]) -> None:
        self._states = {int(c): dict(s) for c, s in states.items()}
