"""MNIST from its four original IDX files, read with numpy and checked against published SHA-256 sums.

Where the files live: ``$FEDSIM_DATA/mnist`` when ``FEDSIM_DATA`` is set, else the user cache
``~/.cache/fedsim/mnist``. If they are absent there, they are downloaded (when online) into that
folder, each checked before it is kept. The check is on the decompressed IDX content, since
re-compressed copies of the same data differ byte for byte.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from fedsim.errors import FedsimError

__all__ = ["MNIST_FILES", "mnist_dir", "load_mnist", "read_idx"]

# SHA-256 of the decompressed IDX content (LeCun, Cortes and Burges' original files).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# Normalisation constants of the MNIST training set (mean and std of pixel/255).
MEAN, STD = 0.1307, 0.3081


def mnist_dir() -> Path:
    root = os.environ.get("FEDSIM_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fedsim"
    return base / "mnist"


def read_idx(raw: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes (big-endian header: magic with type and rank, then the dimensions)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise FedsimError(f"{name}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _verified_content(path: Path, name: str) -> bytes:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise FedsimError(f"{path}: corrupt gzip file ({exc}); delete it or point FEDSIM_DATA at a good copy") from None
    if hashlib.sha256(raw).hexdigest() != MNIST_FILES[name]:
        raise FedsimError(f"{path}: SHA-256 of the decompressed content does not match MNIST's; delete it or point FEDSIM_DATA at a good copy")
    return raw


def _download(folder: Path, name: str) -> None:
    """Fetch ``name.gz`` from the first mirror that answers; keep it only if its content checks out."""
    errors = []
    for mirror in MIRRORS:
        try:
            with urllib.request.urlopen(mirror + name + ".gz", timeout=30) as resp:
                data = resp.read()
        except OSError as exc:
            errors.append(str(exc))
            continue
        if hashlib.sha256(gzip.decompress(data)).hexdigest() != MNIST_FILES[name]:
            errors.append(f"{mirror}: checksum mismatch")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, folder / (name + ".gz"))
        return
    raise FedsimError(
        f"MNIST file {name}.gz is not in {folder} and could not be downloaded ({errors[-1] if errors else 'offline'}); "
        "set FEDSIM_DATA to a folder holding mnist/"
    )


@functools.lru_cache(maxsize=2)
def _load(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = []
    for name in MNIST_FILES:
        path = folder / (name + ".gz")
        if not path.exists():
            _download(folder, name)
        arrays.append(read_idx(_verified_content(path, name), str(path)))
    return tuple(arrays)  # type: ignore[return-value]


def load_mnist(folder: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: images as float32 ``(N, 784)`` standardised, labels int64.

    The arrays are cached per folder and shared between callers (standardising takes longer
    than a round of logistic regression): treat them as read-only.
    """
    return _standardised(Path(folder) if folder else mnist_dir())


@functools.lru_cache(maxsize=2)
def _standardised(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xtr, ytr, xte, yte = _load(folder)

    def images(a: np.ndarray) -> np.ndarray:
        return ((a.reshape(len(a), -1).astype(np.float32) / 255.0) - MEAN) / STD

    return images(xtr), ytr.astype(np.int64), images(xte), yte.astype(np.int64)
