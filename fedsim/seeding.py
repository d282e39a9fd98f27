"""Seed derivation: every random stream comes from (root seed, purpose, round, client id).

No code in fedsim reads or writes global RNG state. A stream is named by a purpose string
("batches", "sampling", "compression", "dp_noise", ...) and integer coordinates, so turning
one feature on never shifts the random numbers of another, and a client's minibatches are
the same whichever runtime trains it.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

__all__ = ["derive_seed", "torch_generator", "numpy_generator"]


def derive_seed(seed: int, purpose: str, *coords: int) -> int:
    """A 63-bit seed for the stream ``(seed, purpose, *coords)`` via numpy's SeedSequence."""
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(purpose.encode()), *(int(c) & 0xFFFFFFFF for c in coords)]
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint32).astype(np.uint64).dot([1 << 31, 1]))


def torch_generator(seed: int, purpose: str, *coords: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` for the stream ``(seed, purpose, *coords)``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, purpose, *coords))
    return gen


def numpy_generator(seed: int, purpose: str, *coords: int) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` for the stream ``(seed, purpose, *coords)``."""
    return np.random.default_rng(derive_seed(seed, purpose, *coords))
