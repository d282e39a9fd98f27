"""Partitioners: split sample indices among clients. Each is a pure function of the labels and a seeded
``numpy.random.Generator``, returning one sorted index array per client.
"""

from __future__ import annotations

import numpy as np

from fedsim.errors import FedsimError

__all__ = [
    "dirichlet_partition",
    "dirichlet_quantity_partition",
    "iid_partition",
    "natural_partition",
    "pathological_partition",
    "quantity_sizes",
    "quantity_skew_partition",
    "shard_partition",
]


def iid_partition(labels: np.ndarray, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and cut into ``num_clients`` parts whose sizes differ by at most one."""
    perm = rng.permutation(len(labels))
    return [np.sort(part) for part in np.array_split(perm, num_clients)]


def _class_dirichlet_split(
    labels: np.ndarray, conc: np.ndarray, rng: np.random.Generator, min_size: int, max_tries: int
) -> list[np.ndarray] | None:
    """Deal every class's shuffled samples by proportions ``p_c ~ Dir(conc)`` over the clients; redraw
    until each client has ``min_size`` samples (None after ``max_tries`` draws)."""
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(len(conc))]
        for idx in by_class:
            idx = rng.permutation(idx)
            cuts = (np.cumsum(rng.dirichlet(conc)) * len(idx)).astype(int)[:-1]
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    return None


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
    out = _class_dirichlet_split(labels, np.full(num_clients, float(alpha)), rng, min_size, max_tries)
    if out is not None:
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


def pathological_partition(labels: np.ndarray, num_clients: int, rng: np.random.Generator, *, classes_per_client: int = 2) -> list[np.ndarray]:
    """Every client holds exactly ``classes_per_client`` (c) classes (the "#C = c" split of
    Li, Diao, Chen and He 2022, NIID-Bench, arXiv:2102.02079).

    Classes are dealt greedily: client k takes the c classes held by the fewest clients so far,
    ties broken at random. So every client holds c distinct classes, every class is held by
    ``floor(K c / L)`` or one more clients, and the class sets vary from client to client. Each
    class's samples are shuffled and cut into equal parts among its holders; every sample goes to
    exactly one client.
    """
    classes = np.unique(labels)
    num_classes = len(classes)
    if not 1 <= classes_per_client <= num_classes:
        raise FedsimError(f"data.partition.classes_per_client: must be in 1..{num_classes}, got {classes_per_client}")
    if num_clients * classes_per_client < num_classes:
        raise FedsimError(
            f"data.partition.classes_per_client: {num_clients} clients x {classes_per_client} classes cannot cover "
            f"{num_classes} classes (every sample must go to a client); raise it to {-(-num_classes // num_clients)}"
        )
    holders: dict[int, list[int]] = {int(c): [] for c in classes}
    count = np.zeros(num_classes, dtype=np.int64)
    for k in range(num_clients):
        pick = np.lexsort((rng.random(num_classes), count))[:classes_per_client]  # fewest holders first, random ties
        count[pick] += 1
        for j in pick:
            holders[int(classes[j])].append(k)
    parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c, ks in holders.items():
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < len(ks):
            raise FedsimError(f"data.partition: class {c} has {len(idx)} samples for {len(ks)} clients holding it; lower classes_per_client")
        for k, chunk in zip(ks, np.array_split(idx, len(ks))):
            parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def quantity_sizes(
    total: int,
    num_clients: int,
    rng: np.random.Generator,
    *,
    law: str = "lognormal",
    sigma: float = 1.0,
    exponent: float = 1.5,
    min_size: int = 1,
) -> np.ndarray:
    """Client sizes summing to ``total``: ``min_size`` each plus the rest split in proportion to
    weights ``s_k``, i.i.d. log-normal ``exp(N(0, sigma^2))`` or Pareto with tail exponent
    ``exponent`` (density ``a s^{-(a+1)}`` on ``s >= 1``; ``numpy``'s ``pareto(a) + 1``).

    Sizes are proportional to the weights up to rounding (largest remainders), so the size law is
    the weights' law.
    """
    if min_size * num_clients > total:
        raise FedsimError(f"data.partition.min_size: {min_size} x {num_clients} clients exceeds {total} samples")
    if law == "lognormal":
        if sigma <= 0:
            raise FedsimError(f"data.partition.sigma: must be > 0, got {sigma}")
        w = rng.lognormal(0.0, sigma, num_clients)
    elif law == "power":
        if exponent <= 0:
            raise FedsimError(f"data.partition.exponent: must be > 0, got {exponent}")
        w = rng.pareto(exponent, num_clients) + 1.0
    else:
        raise FedsimError(f"data.partition.law: unknown size law '{law}' (allowed: lognormal, power)")
    rest = total - min_size * num_clients
    share = w / w.sum() * rest
    sizes = np.floor(share).astype(np.int64)
    short = rest - int(sizes.sum())
    sizes[np.argsort(sizes - share, kind="stable")[:short]] += 1  # largest remainders first
    return sizes + min_size


def quantity_skew_partition(
    labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    *,
    law: str = "lognormal",
    sigma: float = 1.0,
    exponent: float = 1.5,
    min_size: int = 1,
) -> list[np.ndarray]:
    """Unequal client sizes (:func:`quantity_sizes`), labels IID: a random permutation cut at the sizes."""
    sizes = quantity_sizes(len(labels), num_clients, rng, law=law, sigma=sigma, exponent=exponent, min_size=min_size)
    perm = rng.permutation(len(labels))
    return [np.sort(p) for p in np.split(perm, np.cumsum(sizes)[:-1])]


def dirichlet_quantity_partition(
    labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    *,
    alpha: float = 0.5,
    law: str = "lognormal",
    sigma: float = 1.0,
    exponent: float = 1.5,
    min_size: int = 1,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Label skew and quantity skew together.

    Target size shares ``s`` come from :func:`quantity_sizes`; for every class c the proportions
    over clients are ``p_c ~ Dir(alpha K s)``. Then ``E[p_ck] = s_k`` (client k's expected share
    of every class is its size share) while ``alpha`` sets the label skew as in
    :func:`dirichlet_partition` (``alpha K s_k = alpha`` when sizes are equal). Redrawn until every
    client has ``min_size`` samples.
    """
    if alpha <= 0:
        raise FedsimError(f"data.partition.alpha: must be > 0, got {alpha}")
    sizes = quantity_sizes(len(labels), num_clients, rng, law=law, sigma=sigma, exponent=exponent, min_size=min_size)
    conc = alpha * num_clients * sizes / sizes.sum()
    out = _class_dirichlet_split(labels, conc, rng, min_size, max_tries)
    if out is not None:
        return out
    raise FedsimError(
        f"data.partition: no Dirichlet-quantity split (alpha={alpha}, law={law}) gave every one of {num_clients} clients "
        f"{min_size} samples in {max_tries} tries; raise alpha or lower min_size"
    )


def natural_partition(client_id: np.ndarray, rng: np.random.Generator, *, max_clients: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """One client per natural id (FEMNIST writer, Shakespeare role, Synthetic device, custom ``client_id``).

    Returns the index lists and the natural id of each; with ``max_clients`` below the number
    of ids, that many ids are drawn without replacement (kept in ascending id order) and the
    other ids' samples are left out.
    """
    ids, inverse = np.unique(client_id, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    parts = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(ids)))[:-1])
    keep = np.arange(len(ids))
    if max_clients is not None and max_clients < len(ids):
        keep = np.sort(rng.choice(len(ids), size=max_clients, replace=False))
    return [np.sort(parts[i]) for i in keep], ids[keep]
