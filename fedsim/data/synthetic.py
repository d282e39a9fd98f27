"""Synthetic(alpha, beta), the federated benchmark of Li et al. 2020 (FedProx, arXiv:1812.06127, sec. 5.1).

Generated from the published formula and the seed (it is the benchmark itself, not a stand-in):
for device k,

    u_k ~ N(0, alpha),  W_k ~ N(u_k, 1) in R^{C x d},  b_k ~ N(u_k, 1) in R^C     (model heterogeneity)
    B_k ~ N(0, beta),   v_k ~ N(B_k, 1) in R^d,        x ~ N(v_k, Sigma)           (feature heterogeneity)
    Sigma = diag(j^{-1.2}), j = 1..d,                 y = argmax softmax(W_k x + b_k)

with d = 60 and C = 10 as in the paper. The paper writes N(0, alpha); the authors' generator
calls ``np.random.normal(0, alpha, ...)``, i.e. alpha (and beta) is the *standard deviation*.
This module follows the code, so its data match the published benchmark.
Device sample counts follow the authors' code: ``lognormal(4, 2) + 50`` (optionally capped by
``max_samples``). Each device's samples are split 90/10 into train and test, as in their code.
"""

from __future__ import annotations

import numpy as np

from fedsim.errors import FedsimError
from fedsim.seeding import numpy_generator

__all__ = ["synthetic_federated"]


def synthetic_federated(
    *,
    alpha: float,
    beta: float,
    num_devices: int,
    seed: int,
    dim: int = 60,
    num_classes: int = 10,
    max_samples: int | None = None,
    iid: bool = False,
    test_fraction: float = 0.1,
    params_out: dict[str, list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, device_train, x_test, y_test)``: float32 features, int64 labels and device ids.

    ``iid=True`` is the paper's Synthetic-IID: one ``W, b ~ N(0, 1)`` for all devices and
    ``x ~ N(0, Sigma)``. ``params_out``, when given, receives each device's ``W``, ``b`` and ``v``
    (lists indexed by device), for checking the data against the formula.
    """
    if alpha < 0 or beta < 0:
        raise FedsimError(f"data.synthetic: alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
    rng = numpy_generator(seed, "synthetic")
    sizes = (rng.lognormal(4, 2, num_devices).astype(int) + 50)
    if max_samples is not None:
        sizes = np.minimum(sizes, max_samples)
    sigma_diag = np.arange(1, dim + 1, dtype=np.float64) ** -1.2
    w_shared, b_shared = rng.normal(0, 1, (num_classes, dim)), rng.normal(0, 1, num_classes)
    xs, ys, ds, xts, yts = [], [], [], [], []
    for k, n in enumerate(sizes):
        if iid:
            w, b, mean = w_shared, b_shared, np.zeros(dim)
        else:
            u = rng.normal(0, alpha)
            w, b = rng.normal(u, 1, (num_classes, dim)), rng.normal(u, 1, num_classes)
            mean = rng.normal(rng.normal(0, beta), 1, dim)
        if params_out is not None:
            for key, value in (("W", w), ("b", b), ("v", mean)):
                params_out.setdefault(key, []).append(value)
        x = mean + rng.normal(0, 1, (n, dim)) * np.sqrt(sigma_diag)
        y = np.argmax(x @ w.T + b, axis=1)  # softmax is monotone: argmax of the logits
        n_train = max(1, int(round((1 - test_fraction) * n)))
        xs.append(x[:n_train])
        ys.append(y[:n_train])
        ds.append(np.full(n_train, k))
        xts.append(x[n_train:])
        yts.append(y[n_train:])
    return (
        np.concatenate(xs).astype(np.float32),
        np.concatenate(ys).astype(np.int64),
        np.concatenate(ds).astype(np.int64),
        np.concatenate(xts).astype(np.float32),
        np.concatenate(yts).astype(np.int64),
    )
