"""MNIST loading and the partitioners' statistical properties."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.data import dirichlet_partition, iid_partition, load_mnist, shard_partition
from fedsim.errors import FedsimError


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_mnist_matches_published_counts(mnist):
    xtr, ytr, xte, yte = mnist
    assert xtr.shape == (60000, 784) and xte.shape == (10000, 784)
    assert np.bincount(ytr).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yte).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(xtr.mean()) < 1e-3 and abs(xtr.std() - 1) < 1e-2  # standardised with MNIST's mean and std


def covers_exactly_once(parts, n):
    flat = np.concatenate(parts)
    return len(flat) == n and len(np.unique(flat)) == n


def test_iid_sizes_balanced_and_disjoint(mnist):
    labels = mnist[1]
    parts = iid_partition(labels, 7, np.random.default_rng(0))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert covers_exactly_once(parts, len(labels))


def label_skew(parts, labels):
    """Mean total-variation distance between each client's label histogram and the global one."""
    glob = np.bincount(labels, minlength=10) / len(labels)
    return np.mean([0.5 * np.abs(np.bincount(labels[p], minlength=10) / len(p) - glob).sum() for p in parts])


def test_dirichlet_moves_toward_uniform_as_alpha_grows(mnist):
    labels = mnist[1]
    skews = [label_skew(dirichlet_partition(labels, 50, np.random.default_rng(1), alpha=a), labels) for a in (0.05, 0.5, 5.0, 500.0)]
    assert all(a > b for a, b in zip(skews, skews[1:])), skews
    assert skews[-1] < 0.05 < 0.5 < skews[0]


def test_dirichlet_is_deterministic_and_respects_min_size(mnist):
    labels = mnist[1]
    a = dirichlet_partition(labels, 100, np.random.default_rng(3), alpha=0.1, min_size=20)
    b = dirichlet_partition(labels, 100, np.random.default_rng(3), alpha=0.1, min_size=20)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert min(len(p) for p in a) >= 20
    assert covers_exactly_once(a, len(labels))


def test_dirichlet_unreachable_min_size_is_a_user_error(mnist):
    with pytest.raises(FedsimError, match="min_size"):
        dirichlet_partition(mnist[1], 100, np.random.default_rng(0), alpha=0.01, min_size=500, max_tries=3)


def test_shards_give_each_client_at_most_two_labels(mnist):
    labels = mnist[1]
    parts = shard_partition(labels, 100, np.random.default_rng(0), shards_per_client=2)
    assert covers_exactly_once(parts, len(labels))
    # A shard of 300 sorted labels spans at most two classes; two shards at most four, mostly two.
    classes = [len(np.unique(labels[p])) for p in parts]
    assert max(classes) <= 4 and np.median(classes) <= 2
