"""Synthetic(alpha, beta) (Li et al. 2020) against its formula: labels, covariance, heterogeneity, sizes."""

from __future__ import annotations

import numpy as np

from fedsim.data.synthetic import synthetic_federated


def generate(alpha, beta, devices=400, **kw):
    params: dict = {}
    out = synthetic_federated(alpha=alpha, beta=beta, num_devices=devices, seed=0, max_samples=400, test_fraction=0.0001,
                              params_out=params, **kw)
    return out, params


def test_labels_are_the_argmax_of_each_devices_linear_model():
    (x, y, dev, _, _), p = generate(0.5, 0.5, devices=50)
    for k in range(50):
        rows = dev == k
        assert np.array_equal(y[rows], np.argmax(x[rows] @ p["W"][k].T.astype(np.float32) + p["b"][k], axis=1))


def test_within_device_covariance_is_the_published_diagonal():
    (x, _, dev, _, _), p = generate(0.0, 0.0, devices=200)
    centred = x - np.stack(p["v"])[dev]
    var = centred.var(axis=0)
    expected = np.arange(1, 61) ** -1.2
    assert np.allclose(var, expected, rtol=0.05)
    off = np.corrcoef(centred[:, :5].T)[np.triu_indices(5, 1)]
    assert np.abs(off).max() < 0.03  # Sigma is diagonal


def test_alpha_and_beta_are_the_standard_deviations_of_the_device_means():
    for alpha, beta in ((0.5, 1.0), (1.0, 0.5)):
        _, p = generate(alpha, beta)
        # mean of W_k's entries = u_k + N(0, 1/(C d)); mean of v_k = B_k + N(0, 1/d)
        w_means = np.array([w.mean() for w in p["W"]])
        v_means = np.array([v.mean() for v in p["v"]])
        assert abs(w_means.var() - (alpha**2 + 1 / 600)) < 0.2 * alpha**2
        assert abs(v_means.var() - (beta**2 + 1 / 60)) < 0.2 * beta**2
        # within a device, entries scatter with unit variance around their mean
        assert abs(np.mean([w.var() for w in p["W"]]) - 1) < 0.05


def test_global_labels_are_balanced_and_devices_skewed():
    (_, y, dev, _, _), _ = generate(1.0, 1.0)
    freq = np.bincount(y, minlength=10) / len(y)
    assert np.all(np.abs(freq - 0.1) < 0.04)  # classes are exchangeable under the formula
    per_device_max = [np.bincount(y[dev == k], minlength=10).max() / np.sum(dev == k) for k in range(50)]
    assert np.median(per_device_max) > 0.3  # each device's own W_k favours a few classes


def test_iid_variant_shares_one_model_and_sizes_follow_the_lognormal():
    (_, _, dev, _, _), p = generate(1.0, 1.0, iid=True)
    assert all(np.array_equal(w, p["W"][0]) for w in p["W"]) and all(np.all(v == 0) for v in p["v"])
    x, y, dev, _, _ = synthetic_federated(alpha=0, beta=0, num_devices=3000, seed=1, dim=2, test_fraction=0.0001)
    sizes = np.bincount(dev)
    assert sizes.min() >= 50
    logs = np.log(sizes - 49.5)  # sizes are floor(lognormal(4, 2)) + 50
    assert abs(np.median(logs) - 4) < 0.15
