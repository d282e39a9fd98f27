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

__all__ = ["derive_seed", "derive_seeds", "torch_generator", "torch_generators", "numpy_generator"]


def derive_seed(seed: int, purpose: str, *coords: int) -> int:
    """A 63-bit seed for the stream ``(seed, purpose, *coords)`` via numpy's SeedSequence."""
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(purpose.encode()), *(int(c) & 0xFFFFFFFF for c in coords)]
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint32).astype(np.uint64).dot([1 << 31, 1]))


# numpy's SeedSequence constants (numpy/random/bit_generator.pyx, after M. E. O'Neill's seed_seq_fe).
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT, _POOL_SIZE = 0xCA01F9DD, 0x4973F715, 16, 4


def derive_seeds(seed: int, purpose: str, *coords: int | np.ndarray) -> np.ndarray:
    """:func:`derive_seed` for many streams at once: ``coords`` may be integer arrays (broadcast).

    A vectorized re-implementation of ``SeedSequence(entropy).generate_state(2)`` for entropy
    words below 2**32 (one word each), so ``derive_seeds(s, p, r, clients)[i] ==
    derive_seed(s, p, r, clients[i])``: a cohort's streams cost one array pass instead of one
    SeedSequence per client.
    """
    words = [np.uint32(int(seed) & 0xFFFFFFFF), np.uint32(zlib.crc32(purpose.encode()))]
    words += [(np.asarray(c, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32) for c in coords]
    entropy = [w for w in np.broadcast_arrays(*words)]
    shape = entropy[0].shape
    with np.errstate(over="ignore"):
        hash_const = np.uint32(_INIT_A)

        def hashmix(value: np.ndarray) -> np.ndarray:
            nonlocal hash_const
            value = value ^ hash_const
            hash_const = np.uint32(hash_const * np.uint32(_MULT_A))
            value = value * hash_const
            return value ^ (value >> np.uint32(_XSHIFT))

        def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
            return result ^ (result >> np.uint32(_XSHIFT))

        zero = np.zeros(shape, dtype=np.uint32)
        pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(_POOL_SIZE)]
        for src in range(_POOL_SIZE):
            for dst in range(_POOL_SIZE):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(_POOL_SIZE, len(entropy)):
            for dst in range(_POOL_SIZE):
                pool[dst] = mix(pool[dst], hashmix(entropy[src]))
        state = []
        const = np.uint32(_INIT_B)
        for i in range(2):
            value = pool[i % _POOL_SIZE] ^ const
            const = np.uint32(const * np.uint32(_MULT_B))
            value = value * const
            state.append(value ^ (value >> np.uint32(_XSHIFT)))
    # derive_seed's ``.dot([1 << 31, 1])`` mixes uint64 with int64, so numpy sums in float64;
    # the same rounding here keeps every stream identical.
    return (state[0].astype(np.float64) * float(1 << 31) + state[1].astype(np.float64)).astype(np.uint64)


def torch_generators(seed: int, purpose: str, *coords: int | np.ndarray, device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One :func:`torch_generator` per element of the broadcast ``coords`` (seeds derived in one pass)."""
    out = []
    for s in derive_seeds(seed, purpose, *coords).reshape(-1).tolist():
        gen = torch.Generator(device=device)
        gen.manual_seed(s)
        out.append(gen)
    return out


def torch_generator(seed: int, purpose: str, *coords: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` for the stream ``(seed, purpose, *coords)``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, purpose, *coords))
    return gen


def numpy_generator(seed: int, purpose: str, *coords: int) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` for the stream ``(seed, purpose, *coords)``."""
    return np.random.default_rng(derive_seed(seed, purpose, *coords))
