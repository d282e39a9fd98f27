"""Compression on the two links of a server round: client uplink and server broadcast (downlink).

:class:`UplinkCompression` is a client update transform (``ClientTask.transforms``): the client
sends ``C(update)`` and keeps any error-feedback residual in its own state. :class:`Downlink`
compresses the server's broadcast the EF21-P way: server and clients share a copy of the model,
and only the compressed change of that copy is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fedsim.compression.base import FLOAT_BITS, Compressor
from fedsim.seeding import torch_generator

__all__ = ["Downlink", "UplinkCompression"]


@dataclass(frozen=True)
class UplinkCompression:
    """Client update transform: replace the update by ``C(update)`` and report the bits sent.

    The compressor's state (error-feedback residual, PowerSGD warm start) is merged into the
    client's state dict, which the client state store keeps across rounds.
    """

    compressor: Compressor

    def __call__(self, update: Tensor, state: dict[str, Tensor], generator: torch.Generator) -> tuple[Tensor, int]:
        msg = self.compressor.compress(update, generator, state)
        state.update(msg.state)
        return msg.value, msg.bits


class Downlink:
    """Compressed broadcast with a shared model copy (EF21-P: Gruntkowska, Tyurin and Richtárik,
    "EF21-P and Friends: Improved Theoretical Communication Complexity for Distributed
    Optimization with Bidirectional Compression", ICML 2023, eq. (5)).

    The server keeps ``w_hat``, the model its clients hold. In round t it sends
    ``m_t = C(w_t - w_hat_{t-1})`` and both sides set ``w_hat_t = w_hat_{t-1} + m_t``; clients
    train from ``w_hat_t`` and their updates are applied to the server's ``w_t``. What C drops
    stays in ``w_t - w_hat_t`` and is sent later, so no separate error feedback is needed.

    Accounting: the first broadcast is the full float32 model. A client that last received the
    copy in round s < t-1 must catch up: it is charged the messages of rounds s+1..t it missed,
    or the full model (32 d bits) if that is cheaper; a client never seen gets the full model.

    Parameters
    ----------
    compressor : Compressor
        C; its randomness in round t comes from the ``(seed, "downlink_compression", t)`` stream.
    seed : int
        Root seed.
    """

    def __init__(self, compressor: Compressor, seed: int) -> None:
        self.compressor = compressor
        self.seed = seed
        self.copy: Tensor | None = None
        self.rnd = -1
        self.state: dict[str, Tensor] = {}
        self.cumulative_bits: dict[int, int] = {}  # round -> bits of all messages up to it
        self.synced: dict[int, int] = {}  # client -> last round whose copy it holds

    def broadcast(self, params: Tensor, cohort: Sequence[int], rnd: int) -> tuple[Tensor, int]:
        """The copy ``w_hat_rnd`` the cohort trains from, and the bits sent to the cohort."""
        if self.copy is None:
            self.copy, self.rnd = params.clone(), rnd
            self.cumulative_bits[rnd] = 0
        elif rnd != self.rnd:  # several cohort calls in one round share one message
            gen = torch_generator(self.seed, "downlink_compression", rnd, device=params.device)
            msg = self.compressor.compress(params - self.copy, gen, self.state)
            self.copy, self.state = self.copy + msg.value, msg.state
            self.cumulative_bits[rnd] = self.cumulative_bits[self.rnd] + msg.bits
            self.rnd = rnd
        full = FLOAT_BITS * params.numel()
        bits = 0
        for client in cohort:
            last = self.synced.get(client)
            bits += full if last is None else min(full, self.cumulative_bits[rnd] - self.cumulative_bits[last])
            self.synced[client] = rnd
        return self.copy, bits

    def state_dict(self) -> dict[str, Any]:
        return {
            "copy": self.copy,
            "round": self.rnd,
            "state": dict(self.state),
            "cumulative_bits": dict(self.cumulative_bits),
            "synced": dict(self.synced),
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.copy = sd["copy"]
        self.rnd = int(sd["round"])
        self.state = dict(sd["state"])
        self.cumulative_bits = {int(k): int(v) for k, v in sd["cumulative_bits"].items()}
        self.synced = {int(k): int(v) for k, v in sd["synced"].items()}
