"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the official python-pickle archives.

``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html
are downloaded into ``$FEDSIM_DATA/<name>/`` when absent (online) and checked against the MD5
the page publishes. Inside, each batch is a pickled dict with ``data`` (N x 3072 uint8, channel
planes R, G, B of a 32x32 image, row-major) and ``labels`` (CIFAR-10) or ``fine_labels``
(CIFAR-100). Images are standardised per channel with the training set's published mean and std.
"""

from __future__ import annotations

import functools
import pickle
import tarfile
from pathlib import Path

import numpy as np

from fedsim.data.files import RemoteFile, cached_arrays, data_dir, fetch
from fedsim.errors import FedsimError

__all__ = ["CIFAR", "load_cifar", "read_cifar_archive"]

_BASE = "https://www.cs.toronto.edu/~kriz/"
CIFAR: dict[str, dict] = {
    "cifar10": {
        "remote": RemoteFile("cifar-10-python.tar.gz", (_BASE + "cifar-10-python.tar.gz",), "md5:c58f30108f718f92721af3b95e74349a"),
        "train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
        "test": ["cifar-10-batches-py/test_batch"],
        "label": "labels",
        "classes": 10,
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
    "cifar100": {
        "remote": RemoteFile("cifar-100-python.tar.gz", (_BASE + "cifar-100-python.tar.gz",), "md5:eb9058c3a382ffc7106e4002c42a8d85"),
        "train": ["cifar-100-python/train"],
        "test": ["cifar-100-python/test"],
        "label": "fine_labels",
        "classes": 100,
        "mean": (0.5071, 0.4865, 0.4409),
        "std": (0.2673, 0.2564, 0.2762),
    },
}


def _unpickle(blob: bytes, where: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = pickle.loads(blob, encoding="bytes")
        data, labels = d[b"data"], d[label_key.encode()]
    except Exception as exc:  # a damaged pickle can raise nearly anything
        raise FedsimError(f"{where}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3072), np.asarray(labels, dtype=np.int64)


def read_cifar_archive(path: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw ``(x_train uint8 (N, 3072), y_train, x_test, y_test)`` from the official tar.gz."""
    spec = CIFAR[name]
    try:
        with tarfile.open(path, "r:gz") as tar:
            def read(members: list[str]) -> tuple[np.ndarray, np.ndarray]:
                parts = []
                for m in members:
                    f = tar.extractfile(m)
                    if f is None:
                        raise KeyError(m)
                    parts.append(_unpickle(f.read(), f"{path}:{m}", spec["label"]))
                return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

            (xtr, ytr), (xte, yte) = read(spec["train"]), read(spec["test"])
    except (tarfile.TarError, OSError, EOFError, KeyError) as exc:
        raise FedsimError(f"{path}: corrupt or incomplete CIFAR archive ({type(exc).__name__}: {exc}); delete it and download again") from None
    return xtr, ytr, xte, yte


def _check(path: Path, remote: RemoteFile) -> None:
    if not remote.verify(path.read_bytes()):
        raise FedsimError(f"{path}: {remote.digest.split(':')[0].upper()} does not match the published {remote.digest}; delete it and download again")


def load_cifar(name: str, folder: str | Path | None = None, *, verify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: float32 ``(N, 3072)`` standardised per channel, int64 labels."""
    if name not in CIFAR:
        raise FedsimError(f"data.dataset: '{name}' is not a CIFAR set (allowed: {', '.join(CIFAR)})")
    return _load(name, Path(folder) if folder else data_dir(name), verify)


@functools.lru_cache(maxsize=2)
def _load(name: str, folder: Path, verify: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    spec = CIFAR[name]
    path = fetch(name, folder, spec["remote"])

    def build() -> dict[str, np.ndarray]:
        if verify:
            _check(path, spec["remote"])
        xtr, ytr, xte, yte = read_cifar_archive(path, name)
        mean = np.repeat(np.asarray(spec["mean"], np.float32), 1024)
        std = np.repeat(np.asarray(spec["std"], np.float32), 1024)
        images = lambda a: (a.astype(np.float32) / 255.0 - mean) / std  # noqa: E731
        return {"x_train": images(xtr), "y_train": ytr, "x_test": images(xte), "y_test": yte}

    a = cached_arrays(name, [path], ("x_train", "y_train", "x_test", "y_test"), build, extra_key=f"{spec['mean']}{spec['std']}:verified={verify}")
    return a["x_train"], a["y_train"], a["x_test"], a["y_test"]
