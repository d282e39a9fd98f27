"""EF21: the sender and receiver track an estimate g and only the compressed change is sent."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import Compressed, Compressor, Guarantee, State, check_vector
from fedsim.compression.error_feedback import contractive_scale, feedback_guarantee, feedback_note

__all__ = ["EF21", "ESTIMATE_KEY"]

ESTIMATE_KEY = "ef21_estimate"


@dataclass(frozen=True)
class EF21(Compressor):
    """EF21 (Richtárik, Sokolov and Fatkhullin, "EF21: A New, Simpler, Theoretically Better, and
    Practically Faster Error Feedback", NeurIPS 2021, Algorithm 1, line ``g_i^{t+1} = g_i^t +
    C(grad f_i(x^{t+1}) - g_i^t)``).

    The sender keeps the estimate ``g`` (key ``"ef21_estimate"``, zero at the start) and sends
    ``c_t = C(x_t - g_t)``; both ends then set ``g_{t+1} = g_t + c_t``. The value returned is
    ``g_{t+1}``, what a receiver holding ``g_t`` for this sender reconstructs; the bits are those
    of ``c_t``. For a delta-contraction C and a fixed x, ``||g_t - x||^2 <= (1 - delta)^t ||x||^2``;
    EF21's analysis needs that contraction, so C must declare one (an unbiased operator with
    omega >= 1 is applied as ``C / (1 + omega)``, a biased non-contractive one is refused; see
    :func:`~fedsim.compression.error_feedback.contractive_scale`).

    Parameters
    ----------
    inner : Compressor
        The operator C.
    key : str (default: "ef21_estimate")
        State key of the estimate.
    """

    inner: Compressor
    key: str = ESTIMATE_KEY
    name = "ef21"

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        estimate = (state or {}).get(self.key)
        if estimate is None:
            estimate = torch.zeros_like(x)
        scale = contractive_scale(self.inner, check_vector(self.name, x), self.name)
        msg = self.inner.compress(x - estimate, generator, state)
        new_state = dict(msg.state)
        new_state[self.key] = estimate + (msg.value if scale == 1.0 else msg.value * scale)
        return Compressed(new_state[self.key], msg.bits, new_state)

    def guarantee(self, d: int) -> Guarantee:
        return feedback_guarantee(self.inner, d, self.name)

    def note(self, d: int) -> str:
        """What the feedback applies, for the run's summary."""
        return feedback_note(self.inner, d, self.name)
