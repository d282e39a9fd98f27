"""PowerSGD: rank-r compression of each weight matrix by one warm-started power iteration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fedsim.compression.base import FLOAT_BITS, Compressed, Compressor, Guarantee, State, check_vector
from fedsim.errors import FedsimError

__all__ = ["PowerSGD", "Block"]

WARM_START_KEY = "powersgd_q"


@dataclass(frozen=True)
class Block:
    """One parameter tensor inside the flat vector: ``x[offset:offset + rows*cols]`` viewed as rows x cols."""

    offset: int
    rows: int
    cols: int
    low_rank: bool

    @property
    def size(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class PowerSGD(Compressor):
    """PowerSGD (Vogels, Karimireddy and Jaggi, "PowerSGD: Practical Low-Rank Gradient Compression
    for Distributed Optimization", NeurIPS 2019, Algorithm 1).

    Each tensor of shape (n0, n1, ...) is viewed as an n0 x (n1 * ...) matrix M. With the warm
    start Q from the previous call (standard normal the first time): ``P = M Q``,
    ``P_hat = orthogonalize(P)``, ``Q = M^T P_hat``, and the receiver decodes ``P_hat Q^T``; the
    new Q is kept in the sender's state (key ``"powersgd_q"``) for the next call. A tensor
    whose factors would not be smaller than itself (1-D tensors, tiny matrices) is sent
    uncompressed, as in the paper. Bits: ``32 r (n + m)`` per compressed matrix, 32 per value
    otherwise. Here each sender compresses on its own, without the paper's all-reduce of P.

    ``P_hat P_hat^T M`` is a projection of M, so ``||C(x) - x|| <= ||x||`` always, and a rank-r
    M is recovered exactly whenever ``M Q`` has rank r; no delta > 0 holds for every warm start.

    Parameters
    ----------
    rank : int
        Rank r >= 1 of the approximation.
    shapes : sequence of tuple of int
        The shapes of the tensors laid out, in order, in the flat vector (``ParamSpec.shapes``).
    """

    rank: int
    shapes: tuple[tuple[int, ...], ...]
    name = "powersgd"

    def __init__(self, rank: int, shapes: Sequence[Sequence[int]]) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise FedsimError(f"compressor 'powersgd': rank={rank!r} is invalid; allowed: an integer rank >= 1")
        object.__setattr__(self, "rank", rank)
        object.__setattr__(self, "shapes", tuple(tuple(int(n) for n in s) for s in shapes))

    def blocks(self) -> list[Block]:
        """The layout of the flat vector, one block per tensor."""
        out, offset = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            rows = shape[0] if shape else 1
            cols = size // rows if rows else 0
            out.append(Block(offset, rows, cols, len(shape) >= 2 and self.rank * (rows + cols) < size))
            offset += size
        return out

    def compress(self, x: Tensor, generator: torch.Generator, state: State | None = None) -> Compressed:
        d = check_vector(self.name, x)
        blocks = self.blocks()
        total = sum(b.size for b in blocks)
        if d != total:
            raise FedsimError(f"compressor 'powersgd': vector length d={d} does not match its shapes (total {total})")
        r = self.rank
        q_len = sum(b.cols * r for b in blocks if b.low_rank)
        new_state = dict(state or {})
        q_all = new_state.get(WARM_START_KEY)
        if q_all is None or q_all.numel() != q_len:
            q_all = torch.randn(q_len, generator=generator, device=x.device, dtype=x.dtype)
        out, new_q, bits, q_off = torch.empty_like(x), torch.empty_like(q_all), 0, 0
        for b in blocks:
            seg = x[b.offset : b.offset + b.size]
            if not b.low_rank:
                out[b.offset : b.offset + b.size] = seg
                bits += FLOAT_BITS * b.size
                continue
            m = seg.view(b.rows, b.cols)
            p_hat = torch.linalg.qr(m @ q_all[q_off : q_off + b.cols * r].view(b.cols, r)).Q
            q = m.T @ p_hat
            out[b.offset : b.offset + b.size] = (p_hat @ q.T).reshape(-1)
            new_q[q_off : q_off + b.cols * r] = q.reshape(-1)
            bits += FLOAT_BITS * r * (b.rows + b.cols)
            q_off += b.cols * r
        new_state[WARM_START_KEY] = new_q
        return Compressed(out, bits, new_state)

    def guarantee(self, d: int) -> Guarantee:
        if not any(b.low_rank for b in self.blocks()):
            return Guarantee(unbiased=True, error=0.0)
        return Guarantee(unbiased=False, error=1.0)
