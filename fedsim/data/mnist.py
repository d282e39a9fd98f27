"""MNIST and Fashion-MNIST from their four IDX files, read with numpy and checked against SHA-256 sums.

Where the files live: ``$FEDSIM_DATA/<name>`` (``mnist`` or ``fashion_mnist``) when ``FEDSIM_DATA``
is set, else ``~/.cache/fedsim/<name>``. Absent files are downloaded (when online) into that
folder, each checked before it is kept. The check is on the decompressed IDX content, since
re-compressed copies of the same data differ byte for byte. Standardised arrays are cached as
``.npy`` files keyed by the source files' SHA-256 (:func:`fedsim.data.files.cached_arrays`).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedsim.data.files import RemoteFile, cached_arrays, data_dir, fetch
from fedsim.errors import FedsimError

__all__ = ["IDX_SETS", "MNIST_FILES", "FASHION_MNIST_FILES", "IdxSet", "load_idx_set", "load_mnist", "mnist_dir", "read_idx"]

# SHA-256 of the decompressed IDX content (LeCun, Cortes and Burges' original files).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# SHA-256 of the decompressed IDX content of Xiao, Rasul and Vollgraf's Fashion-MNIST (arXiv:1708.07747).
FASHION_MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


@dataclass(frozen=True)
class IdxSet:
    """An IDX-format image data set: file checksums, download mirrors, normalisation constants."""

    name: str
    files: dict[str, str]
    mirrors: tuple[str, ...]
    mean: float  # of pixel/255 over the training images
    std: float


IDX_SETS: dict[str, IdxSet] = {
    "mnist": IdxSet(
        "mnist", MNIST_FILES,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        0.1307, 0.3081,
    ),
    "fashion_mnist": IdxSet(
        "fashion_mnist", FASHION_MNIST_FILES,
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        0.2860, 0.3530,
    ),
}
# Kept for callers of the MNIST-only API.
MEAN, STD = IDX_SETS["mnist"].mean, IDX_SETS["mnist"].std


def mnist_dir() -> Path:
    return data_dir("mnist")


def read_idx(raw: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes (big-endian header: magic with type and rank, then the dimensions)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise FedsimError(f"{name}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _verified_content(path: Path, name: str, spec: IdxSet) -> bytes:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise FedsimError(f"{path}: corrupt gzip file ({exc}); delete it or point FEDSIM_DATA at a good copy") from None
    if hashlib.sha256(raw).hexdigest() != spec.files[name]:
        raise FedsimError(
            f"{path}: SHA-256 of the decompressed content does not match {spec.name}'s; delete it or point FEDSIM_DATA at a good copy"
        )
    return raw


def _remote(spec: IdxSet, name: str) -> RemoteFile:
    return RemoteFile(name + ".gz", tuple(m + name + ".gz" for m in spec.mirrors), "sha256:" + spec.files[name], "gzip-content")


def load_idx_set(name: str, folder: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` of ``mnist`` or ``fashion_mnist``.

    Images are float32 ``(N, 784)``, standardised with the training set's mean and std; labels
    int64. The arrays are shared between callers in a process: treat them as read-only.
    """
    if name not in IDX_SETS:
        raise FedsimError(f"data.dataset: '{name}' is not an IDX data set (allowed: {', '.join(IDX_SETS)})")
    return _standardised(name, Path(folder) if folder else data_dir(name))


@functools.lru_cache(maxsize=4)
def _standardised(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    spec = IDX_SETS[name]
    paths = [fetch(name, folder, _remote(spec, f)) for f in spec.files]

    def build() -> dict[str, np.ndarray]:
        xtr, ytr, xte, yte = (read_idx(_verified_content(p, f, spec), str(p)) for p, f in zip(paths, spec.files))

        def images(a: np.ndarray) -> np.ndarray:
            return ((a.reshape(len(a), -1).astype(np.float32) / 255.0) - spec.mean) / spec.std

        return {"x_train": images(xtr), "y_train": ytr.astype(np.int64), "x_test": images(xte), "y_test": yte.astype(np.int64)}

    arrays = cached_arrays(name, paths, ("x_train", "y_train", "x_test", "y_test"), build, extra_key=f"{spec.mean},{spec.std}")
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


def load_mnist(folder: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's ``(x_train, y_train, x_test, y_test)``; see :func:`load_idx_set`."""
    return load_idx_set("mnist", folder)
