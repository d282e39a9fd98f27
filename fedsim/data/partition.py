"""Partitioners: split sample indices among clients. Each is a pure function of the labels and a seeded
``numpy.random.Generator``, returning one sorted index array per client.
"""

from __future__ import annotations

import numpy as np

from fedsim.errors import FedsimError

__all__ = ["iid_partition", "dirichlet_partition", "shard_partition"]


def iid_partition(labels: np.ndarray, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and cut into ``num_clients`` parts whose sizes differ by at most one."""
    perm = rng.permutation(len(labels))
    return [np.sort(part) for part in np.array_split(perm, num_clients)]


def dirichlet_partition(
    labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    *,
    alpha: float,
    min_size: int = 10,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Label-skewed split (Hsu, Qi and Brown 2019, arXiv:1909.06335).

    For every class c, proportions ``p_c ~ Dir(alpha * 1_K)`` over the K clients decide how the
    samples of class c are dealt out. Small alpha gives each client few classes; as alpha grows
    every client's label histogram tends to the global one. The draw is repeated (at most
    ``max_tries`` times) until every client holds at least ``min_size`` samples.
    """
    if alpha <= 0:
        raise FedsimError(f"data.partition.alpha: must be > 0, got {alpha}")
    if min_size * num_clients > len(labels):
        raise FedsimError(f"data.partition.min_size: {min_size} x {num_clients} clients exceeds {len(labels)} samples")
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for idx in by_class:
            idx = rng.permutation(idx)
            cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, alpha))) * len(idx)).astype(int)[:-1]
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise FedsimError(
        f"data.partition: no Dirichlet(alpha={alpha}) split gave every one of {num_clients} clients "
        f"{min_size} samples in {max_tries} tries; raise alpha or lower min_size"
    )


def shard_partition(labels: np.ndarray, num_clients: int, rng: np.random.Generator, *, shards_per_client: int = 2) -> list[np.ndarray]:
    """McMahan et al. 2017's pathological non-IID split: sort by label, cut into
    ``num_clients * shards_per_client`` equal shards, give each client ``shards_per_client`` at random.
    """
    num_shards = num_clients * shards_per_client
    if num_shards > len(labels):
        raise FedsimError(f"data.partition.shards_per_client: {num_shards} shards exceed {len(labels)} samples")
    order = np.argsort(labels, kind="stable")
    shards = np.array_split(order, num_shards)
    assignment = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
    return [np.sort(np.concatenate([shards[s] for s in row])) for row in assignment]
