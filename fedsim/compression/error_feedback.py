"""Error feedback (EF-SGD): compress the message plus the carried compression error (spec section 5.10)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import Compressed, Compressor, Guarantee, State

__all__ = ["ErrorFeedback", "RESIDUAL_KEY"]

RESIDUAL_KEY = "ef_residual"


@dataclass(frozen=True)
class ErrorFeedback(Compressor):
    """EF-SGD (Karimireddy, Rebjock, Stich and Jaggi, "Error Feedback Fixes SignSGD and other
    Gradient Compression Schemes", ICML 2019, Algorithm 2; spec Q(288)).

    Sends ``m_t = C(x_t + e_t)`` and keeps ``e_{t+1} = (x_t + e_t) - m_t`` in the sender's state
    (key ``"ef_residual"``, zero at the start), so ``sum_t m_t + e_{T+1} = sum_t x_t``: nothing is
    lost, only delayed. With the identity compressor the residual stays zero and the messages
    equal the inputs bit for bit. The class and the bits are those of the wrapped operator,
    applied to ``x_t + e_t``.

    Parameters
    ----------
    inner : Compressor
        The operator C.
    key : str (default: "ef_residual")
        State key of the residual, distinct per stream when one sender feeds several.
    """

    inner: Compressor
    key: str = RESIDUAL_KEY
    name = "ef"

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        residual = (state or {}).get(self.key)
        # Skipping the add on the first call keeps identity+EF bit-identical to plain SGD (-0.0 + 0.0 = +0.0).
        corrected = x if residual is None else x + residual
        msg = self.inner.compress(corrected, generator, state)
        new_state = dict(msg.state)
        new_state[self.key] = corrected - msg.value
        return Compressed(msg.value, msg.bits, new_state)

    def guarantee(self, d: int) -> Guarantee:
        return self.inner.guarantee(d)
