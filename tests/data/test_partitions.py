"""Invariants of every partitioner: each sample exactly once, sizes, classes per client, size laws."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.data.partition import (
    dirichlet_quantity_partition,
    natural_partition,
    pathological_partition,
    quantity_sizes,
    quantity_skew_partition,
)
from fedsim.errors import FedsimError


def labels_of(n: int, classes: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, n)


def covers_exactly_once(parts: list[np.ndarray], n: int) -> bool:
    flat = np.concatenate(parts)
    return len(flat) == n and np.array_equal(np.sort(flat), np.arange(n))


@pytest.mark.parametrize("clients,c", [(100, 2), (7, 3), (10, 1), (3, 4)])
def test_pathological_gives_exactly_c_classes_and_covers_everything(clients, c):
    labels = labels_of(20000)
    parts = pathological_partition(labels, clients, np.random.default_rng(1), classes_per_client=c)
    assert covers_exactly_once(parts, len(labels))
    assert all(len(np.unique(labels[p])) == c for p in parts)
    # Every class is held by floor(Kc/L) or ceil(Kc/L) clients, each getting an equal share (+-1).
    holders = np.zeros(10, int)
    for p in parts:
        holders[np.unique(labels[p])] += 1
    assert holders.min() >= (clients * c) // 10 and holders.max() <= -(-(clients * c) // 10)
    for cls in range(10):
        shares = [np.sum(labels[p] == cls) for p in parts if np.any(labels[p] == cls)]
        assert max(shares) - min(shares) <= 1


def test_pathological_refuses_uncoverable_classes():
    with pytest.raises(FedsimError, match="classes_per_client"):
        pathological_partition(labels_of(1000), 4, np.random.default_rng(0), classes_per_client=2)


def test_power_law_sizes_recover_the_exponent():
    # Pareto(a) weights: the maximum-likelihood tail exponent K / sum log(n_k / n_min) estimates a
    # (std a / sqrt(K), about 2% here).
    for a in (1.2, 2.0):
        sizes = quantity_sizes(2_000_000, 3000, np.random.default_rng(2), law="power", exponent=a)
        assert sizes.sum() == 2_000_000 and sizes.min() >= 1
        a_hat = len(sizes) / np.log(sizes / sizes.min()).sum()
        assert abs(a_hat - a) / a < 0.1, (a, a_hat)


def test_lognormal_sizes_have_the_given_log_std():
    sizes = quantity_sizes(3_000_000, 2000, np.random.default_rng(3), law="lognormal", sigma=0.8)
    assert abs(np.log(sizes).std() - 0.8) < 0.05


def test_quantity_skew_keeps_labels_iid():
    labels = labels_of(200_000)
    parts = quantity_skew_partition(labels, 50, np.random.default_rng(4), law="lognormal", sigma=1.0, min_size=500)
    assert covers_exactly_once(parts, len(labels))
    assert min(len(p) for p in parts) >= 500
    glob = np.bincount(labels, minlength=10) / len(labels)
    for p in parts:  # total variation of a client's label histogram from the global one: sampling noise only
        tv = 0.5 * np.abs(np.bincount(labels[p], minlength=10) / len(p) - glob).sum()
        assert tv < 4 * np.sqrt(10 / len(p)), (len(p), tv)


def test_dirichlet_quantity_sizes_follow_the_targets_and_alpha_sets_the_skew():
    labels = labels_of(100_000)
    targets, realised = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        targets.append(quantity_sizes(len(labels), 40, np.random.default_rng(seed), law="lognormal", sigma=1.0, min_size=1))
        parts = dirichlet_quantity_partition(labels, 40, rng, alpha=1.0, law="lognormal", sigma=1.0, min_size=1)
        assert covers_exactly_once(parts, len(labels))
        realised.append([len(p) for p in parts])
    t, r = np.concatenate(targets), np.concatenate(realised)
    slope = (t * r).sum() / (t * t).sum()  # E[n_k] = N s_k: regression through the origin has slope 1
    assert abs(slope - 1) < 0.1, slope

    def skew(alpha: float) -> float:
        parts = dirichlet_quantity_partition(labels, 40, np.random.default_rng(9), alpha=alpha, sigma=0.5, min_size=1)
        glob = np.bincount(labels, minlength=10) / len(labels)
        return float(np.mean([0.5 * np.abs(np.bincount(labels[p], minlength=10) / len(p) - glob).sum() for p in parts]))

    assert skew(0.1) > skew(1.0) > skew(100.0)


def test_natural_partition_keeps_each_id_whole_and_subsamples():
    ids = np.random.default_rng(5).integers(0, 30, 5000) * 7 + 3  # arbitrary, non-contiguous ids
    parts, kept = natural_partition(ids, np.random.default_rng(0))
    assert covers_exactly_once(parts, len(ids))
    assert list(kept) == sorted(np.unique(ids))
    for p, k in zip(parts, kept):
        assert np.all(ids[p] == k) and len(p) == np.sum(ids == k)
    sub, kept_sub = natural_partition(ids, np.random.default_rng(0), max_clients=8)
    assert len(sub) == 8 and len(set(kept_sub)) == 8 and list(kept_sub) == sorted(kept_sub)
    for p, k in zip(sub, kept_sub):
        assert np.all(ids[p] == k) and len(p) == np.sum(ids == k)


def test_pathological_class_sets_vary_between_clients():
    labels = labels_of(20000)
    parts = pathological_partition(labels, 100, np.random.default_rng(1), classes_per_client=2)
    pairs = {tuple(np.unique(labels[p])) for p in parts}
    assert len(pairs) > 20  # not just the 5 pairs a fixed round-robin gives
