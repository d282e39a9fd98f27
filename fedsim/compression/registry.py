"""Compressors by name: ``build_compressor("top_k", ratio=0.01, feedback="ef")``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fedsim.compression.base import Compressor
from fedsim.compression.composition import SparsifyQuantize
from fedsim.compression.dropout import RandomDropout
from fedsim.compression.ef21 import EF21
from fedsim.compression.error_feedback import ErrorFeedback
from fedsim.compression.identity import Identity
from fedsim.compression.powersgd import PowerSGD
from fedsim.compression.qsgd import QSGD
from fedsim.compression.randomk import RandomK
from fedsim.compression.sign import ScaledSign
from fedsim.compression.topk import TopK
from fedsim.errors import FedsimError

__all__ = ["FEEDBACK", "build_compressor", "compressor_names", "compressor_parameters", "register_compressor"]

_COMPRESSORS: dict[str, Callable[..., Compressor]] = {
    "identity": Identity,
    "top_k": TopK,
    "random_k": RandomK,
    "dropout": RandomDropout,
    "qsgd": QSGD,
    "sign": ScaledSign,
    "powersgd": PowerSGD,
    "sparsify_quantize": SparsifyQuantize,
}

FEEDBACK: dict[str, Callable[[Compressor], Compressor] | None] = {"none": None, "ef": ErrorFeedback, "ef21": EF21}
"""Error-feedback wrappers by name; "none" sends ``C(x)`` as is."""


def register_compressor(name: str, factory: Callable[..., Compressor], force: bool = False) -> None:
    """Make ``factory`` available as ``name``; an existing name needs ``force=True``."""
    if name in _COMPRESSORS and not force:
        raise FedsimError(f"compressor {name!r} is already registered; pass force=True to replace it")
    _COMPRESSORS[name] = factory


def compressor_names() -> list[str]:
    """The registered compressor names, sorted."""
    return sorted(_COMPRESSORS)


def compressor_parameters(name: str) -> list[str]:
    """The keyword parameters the compressor ``name`` accepts."""
    return [p for p in inspect.signature(_factory(name)).parameters if p != "self"]


def _factory(name: str) -> Callable[..., Compressor]:
    if name not in _COMPRESSORS:
        raise FedsimError(f"unknown compressor {name!r}; allowed: {', '.join(compressor_names())}")
    return _COMPRESSORS[name]


def build_compressor(name: str, feedback: str = "none", **params: Any) -> Compressor:
    """Build the compressor ``name`` from keyword ``params``, optionally wrapped in error feedback.

    Raises FedsimError for an unknown name, feedback kind or parameter, a missing parameter,
    or a parameter value out of range.
    """
    factory = _factory(name)
    allowed = compressor_parameters(name)
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        raise FedsimError(
            f"compressor {name!r}: bad parameters {sorted(params)} ({exc}); allowed: {', '.join(allowed) or 'none'}"
        ) from None
    if feedback not in FEEDBACK:
        raise FedsimError(f"unknown feedback {feedback!r}; allowed: {', '.join(FEEDBACK)}")
    compressor = factory(**params)
    wrapper = FEEDBACK[feedback]
    return compressor if wrapper is None else wrapper(compressor)
