"""Error feedback (EF-SGD): compress the message plus the carried compression error (Seide et al. 2014;
Karimireddy et al., "Error Feedback Fixes SignSGD and other Gradient Compression Schemes", ICML 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import Compressed, Compressor, Guarantee, State, check_vector
from fedsim.errors import FedsimError

__all__ = ["ErrorFeedback", "RESIDUAL_KEY", "contractive_scale", "feedback_guarantee", "feedback_note"]

RESIDUAL_KEY = "ef_residual"


def contractive_scale(inner: Compressor, d: int, feedback: str) -> float:
    """The factor that makes ``inner`` a delta-contraction on R^d, which error feedback's guarantee needs.

    Decided by the operator's declared :class:`~fedsim.compression.base.Guarantee`, not its name:

    * a delta-contraction (``E||C(x) - x||^2 <= (1 - delta) ||x||^2``, delta > 0) is used as is (1.0);
    * an unbiased operator with variance constant omega >= 1 (scaled random-k, QSGD with
      d > s^2, ...) is used as ``C / (1 + omega)``, a ``1/(1 + omega)``-contraction
      (Stich, Cordonnier, Jaggi 2018, Remark 4; Richtárik et al. 2021, EF21, Section 2);
    * a biased operator that promises no contraction (PowerSGD, top-k + coarse QSGD) is refused:
      EF-SGD's (Karimireddy et al. 2019, Theorem II) and EF21's analyses need delta > 0, and
      without it the residual may grow without bound.
    """
    g = inner.guarantee(d)
    if g.delta is not None and g.delta > 0:
        return 1.0
    if g.unbiased:
        return 1.0 / (1.0 + g.error)
    raise FedsimError(
        f"feedback: {feedback} needs a delta-contraction, but {type(inner).__name__} is biased with "
        f"E||C(x)-x||^2 <= {g.error:g}||x||^2 on d={d} (no delta > 0); use feedback: none, or a contractive "
        f"compressor (top_k, sign, random_k/dropout with scaled: false)"
    )


def feedback_guarantee(inner: Compressor, d: int, feedback: str) -> Guarantee:
    """The class of the operator error feedback actually applies: ``inner`` or ``inner / (1 + omega)``."""
    scale = contractive_scale(inner, d, feedback)
    if scale == 1.0:
        return inner.guarantee(d)
    return Guarantee(unbiased=False, error=1.0 - scale)  # E||sC(x) - x||^2 <= (1 - s)||x||^2 for s = 1/(1 + omega)


def feedback_note(inner: Compressor, d: int, feedback: str) -> str:
    """One line for the run's summary: which operator the feedback wraps and why."""
    g, scale = inner.guarantee(d), contractive_scale(inner, d, feedback)
    if scale == 1.0:
        return f"{feedback} on {type(inner).__name__}, a delta-contraction with delta = {g.delta:.4g} (d = {d})"
    return (f"{feedback} on {type(inner).__name__} / (1 + omega) = x {scale:.4g}: the operator is unbiased with "
            f"omega = {g.error:.4g} >= 1 (not a contraction), rescaled to a delta-contraction with "
            f"delta = 1/(1 + omega) = {scale:.4g} (d = {d})")


@dataclass(frozen=True)
class ErrorFeedback(Compressor):
    """EF-SGD (Karimireddy, Rebjock, Stich and Jaggi, "Error Feedback Fixes SignSGD and other
    Gradient Compression Schemes", ICML 2019, Algorithm 2; spec Q(288)).

    Sends ``m_t = C(x_t + e_t)`` and keeps ``e_{t+1} = (x_t + e_t) - m_t`` in the sender's state
    (key ``"ef_residual"``, zero at the start), so ``sum_t m_t + e_{T+1} = sum_t x_t``: nothing is
    lost, only delayed. With the identity compressor the residual stays zero and the messages
    equal the inputs bit for bit. The bits are those of the wrapped operator, applied to
    ``x_t + e_t``. The operator must be a delta-contraction (:func:`contractive_scale`): an
    unbiased one with omega >= 1 is applied as ``C / (1 + omega)``, a biased non-contractive one
    is refused.

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
        scale = contractive_scale(self.inner, check_vector(self.name, x), self.name)
        msg = self.inner.compress(corrected, generator, state)
        value = msg.value if scale == 1.0 else msg.value * scale  # the receiver knows the constant: no bits
        new_state = dict(msg.state)
        new_state[self.key] = corrected - value
        return Compressed(value, msg.bits, new_state)

    def guarantee(self, d: int) -> Guarantee:
        return feedback_guarantee(self.inner, d, self.name)

    def note(self, d: int) -> str:
        """What the feedback applies, for the run's summary."""
        return feedback_note(self.inner, d, self.name)
