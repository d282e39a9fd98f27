"""What a partition looks like: client count, size distribution and per-client label histograms."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedsim.data.federated import FederatedData

__all__ = ["label_histograms", "partition_summary"]


def label_histograms(data: FederatedData) -> np.ndarray:
    """``(K, C)`` counts: row k is client k's number of training samples of each class."""
    y = data.y_train.cpu()
    out = np.zeros((data.num_clients, data.num_classes), dtype=np.int64)
    for k, idx in enumerate(data.client_indices):
        out[k] = torch.bincount(y[idx.cpu()], minlength=data.num_classes)[: data.num_classes].numpy()
    return out


def partition_summary(data: FederatedData) -> dict[str, Any]:
    """Client count, sizes (min/median/mean/max), classes per client and the label histograms, JSON-ready."""
    hist = label_histograms(data)
    sizes = hist.sum(1)
    present = (hist > 0).sum(1)
    glob = hist.sum(0) / max(1, hist.sum())
    # Mean total-variation distance of a client's label distribution from the global one (0: IID labels).
    tv = 0.5 * np.abs(hist / np.maximum(sizes, 1)[:, None] - glob).sum(1)
    return {
        "dataset": data.name,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "num_clients": data.num_clients,
        "train_samples": int(sizes.sum()),
        "test_samples": int(len(data.y_test)),
        "size_min": int(sizes.min()),
        "size_median": float(np.median(sizes)),
        "size_mean": float(sizes.mean()),
        "size_max": int(sizes.max()),
        "classes_per_client_min": int(present.min()),
        "classes_per_client_median": float(np.median(present)),
        "classes_per_client_max": int(present.max()),
        "label_skew_tv_mean": float(tv.mean()),
        "client_names": data.client_names,
        "sizes": sizes.tolist(),
        "label_histograms": hist.tolist(),
    }
