"""The compressor interface: a flat float vector in, what the receiver reconstructs and the bits out.

Every operator in :mod:`fedsim.compression` maps a 1-D float tensor ``x`` of length d to the
vector the receiver decodes, ``C(x)``, plus the exact number of bits that crossed the wire.
Counting is honest: 32 bits per float32 value, ``ceil(log2 d)`` bits per coordinate index,
norms and scales included. Randomness comes only from the ``torch.Generator`` passed in.
Operators that remember something between calls (PowerSGD's warm start, error-feedback
residuals) read it from and return it in a per-client ``state`` dict of tensors; the input
dict is never mutated.

Each operator also declares its class, in the terms of Beznosikov, Horváth, Richtárik and
Safaryan, "On Biased Compression for Distributed Learning" (arXiv:2002.12410): unbiased with
variance constant omega, ``E[C(x)] = x`` and ``E||C(x) - x||^2 <= omega ||x||^2``, or a
delta-contraction, ``E||C(x) - x||^2 <= (1 - delta) ||x||^2``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from fedsim.errors import FedsimError
from fedsim.params import FLOAT_BITS

__all__ = [
    "FLOAT_BITS",
    "Compressed",
    "Compressor",
    "Guarantee",
    "compress_rows",
    "index_bits",
    "resolve_k",
]

State = Mapping[str, Tensor]


@dataclass(frozen=True)
class Compressed:
    """One compressed message.

    Attributes
    ----------
    value : Tensor
        ``C(x)``, the vector the receiver reconstructs (same shape and dtype as ``x``).
    bits : int
        Bits actually sent for this message.
    state : dict[str, Tensor]
        The sender's state after this call (the input state plus this operator's keys).
    """

    value: Tensor
    bits: int
    state: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Guarantee:
    """What an operator promises for every ``x`` in R^d (spec Q(281) and section 5.9).

    ``error`` is the constant B in ``E||C(x) - x||^2 <= B ||x||^2``. For an unbiased operator
    it is the variance constant omega; when ``error < 1`` the operator is a delta-contraction
    with ``delta = 1 - error``. A biased operator with ``error >= 1`` promises neither.
    """

    unbiased: bool
    error: float

    @property
    def omega(self) -> float | None:
        """The variance constant omega of an unbiased operator, else None."""
        return self.error if self.unbiased else None

    @property
    def delta(self) -> float | None:
        """The contraction constant delta in (0, 1], else None."""
        return 1.0 - self.error if self.error < 1.0 else None


class Compressor(ABC):
    """A compression operator on flat 1-D float vectors."""

    name: str = "compressor"

    @abstractmethod
    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        """Compress ``x`` (1-D float) with randomness from ``generator``; see :class:`Compressed`."""

    @abstractmethod
    def guarantee(self, d: int) -> Guarantee:
        """The operator's class on R^d; raises FedsimError when its parameters do not fit d."""


def index_bits(d: int) -> int:
    """Bits to name one coordinate of a d-vector, ``ceil(log2 d)`` (0 when d = 1)."""
    return (int(d) - 1).bit_length()


def resolve_k(name: str, k: int | None, ratio: float | None, d: int) -> int:
    """The number of kept coordinates from exactly one of ``k`` or ``ratio`` (k = ceil(ratio d)).

    Raises FedsimError unless ``1 <= k <= d``.
    """
    if k is None:
        assert ratio is not None, name  # check_k_ratio: the operators' constructors require exactly one of k, ratio
        k = math.ceil(ratio * d)
    if not 1 <= k <= d:
        raise FedsimError(f"compressor {name!r}: k={k} does not fit the vector length d={d}; allowed 1 <= k <= d")
    return k


def check_k_or_ratio(name: str, k: int | None, ratio: float | None) -> None:
    """Validate a sparsifier's size parameters before d is known."""
    if (k is None) == (ratio is None):
        raise FedsimError(f"compressor {name!r} needs exactly one of k (count) or ratio (fraction of d)")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise FedsimError(f"compressor {name!r}: k={k!r} is invalid; allowed: an integer 1 <= k <= d")
    if ratio is not None and not 0.0 < ratio <= 1.0:
        raise FedsimError(f"compressor {name!r}: ratio={ratio!r} is invalid; allowed 0 < ratio <= 1")


def check_vector(name: str, x: Tensor) -> int:
    """The length of ``x``, which must be a non-empty 1-D floating tensor."""
    if x.dim() != 1 or x.numel() == 0 or not x.is_floating_point():
        raise FedsimError(
            f"compressor {name!r} takes a non-empty flat 1-D float vector, got shape {tuple(x.shape)} of {x.dtype}"
        )
    return x.numel()


def compress_rows(
    compressor: Compressor,
    rows: Tensor,
    generators: Sequence[torch.Generator],
    states: Sequence[State] | None = None,
) -> tuple[Tensor, list[int], list[dict[str, Tensor]]]:
    """Compress each row of an (n, d) tensor independently, e.g. CHOCO-SGD's ``x_i - x_hat_i``.

    Row i uses ``generators[i]`` and ``states[i]`` (empty when ``states`` is None). Returns the
    (n, d) reconstructions, the bits sent per row and the new states, all in row order.
    """
    if rows.dim() != 2 or len(generators) != rows.shape[0]:
        raise FedsimError(
            f"compress_rows needs an (n, d) tensor and n generators, got shape {tuple(rows.shape)} "
            f"and {len(generators)} generators"
        )
    out = torch.empty_like(rows)
    bits: list[int] = []
    new_states: list[dict[str, Tensor]] = []
    for i, gen in enumerate(generators):
        msg = compressor.compress(rows[i], gen, None if states is None else states[i])
        out[i] = msg.value
        bits.append(msg.bits)
        new_states.append(msg.state)
    return out, bits, new_states
