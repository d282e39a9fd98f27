"""Flat parameter vectors: the one representation of a model outside the model itself.

Outside ``fedsim.models`` a model's parameters are a 1-D float tensor of length ``d``; a
cohort's are a ``(C, d)`` tensor and a decentralized network's an ``(n, d)`` one. Compression,
clipping, smoothing, aggregation and gossip are then plain tensor operations. :class:`ParamSpec`
records the names and shapes so the flat vector can be viewed as the model's tensors again
(``torch.func.functional_call``) and so per-tensor operations (PowerSGD, per-tensor smoothing)
know the layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["FLOAT_BITS", "ParamSpec"]

FLOAT_BITS = 32
"""Bits per transmitted float32 value (parameters, values, norms and scales alike): every message
size in fedsim (bytes_up, bytes_down, compression ratios) counts in these units."""


@dataclass(frozen=True)
class ParamSpec:
    """Names and shapes of a model's parameters, in ``named_parameters()`` order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def from_module(cls, module: nn.Module) -> "ParamSpec":
        named = list(module.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def numel(self) -> int:
        return sum(self.numels)

    def slices(self) -> list[slice]:
        """The slice of the flat vector that holds each tensor."""
        out, start = [], 0
        for n in self.numels:
            out.append(slice(start, start + n))
            start += n
        return out

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate named tensors (each possibly with leading batch dims) into ``(..., d)``."""
        parts = []
        for name, shape in zip(self.names, self.shapes):
            t = tensors[name]
            lead = t.shape[: t.dim() - len(shape)]
            parts.append(t.reshape(*lead, -1))
        return torch.cat(parts, dim=-1)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``flat`` (shape ``(d,)``) as the named tensors; no copy."""
        return {
            name: flat[sl].view(shape)
            for name, shape, sl in zip(self.names, self.shapes, self.slices())
        }
