"""Where data files live, how they are fetched and checked, and the preprocessed-array cache.

Every data set's files sit in ``$FEDSIM_DATA/<name>/`` (default ``~/.cache/fedsim/<name>/``).
An absent file is downloaded from its official URL when online and kept only if its checksum
matches the published one; offline, the error names the file, the URL and the folder to put it
in. Decoded, standardised arrays are cached as ``.npy`` files keyed by the SHA-256 of the source
files, beside them when that folder is writable (else in ``$FEDSIM_CACHE``, default
``~/.cache/fedsim/arrays``; ``FEDSIM_CACHE=off`` disables it), so a run does not decompress and
standardise again on every start.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedsim.errors import FedsimError

__all__ = ["RemoteFile", "cached_arrays", "data_dir", "fetch", "file_sha256"]


def data_dir(name: str) -> Path:
    """``$FEDSIM_DATA/<name>`` when ``FEDSIM_DATA`` is set, else ``~/.cache/fedsim/<name>``."""
    root = os.environ.get("FEDSIM_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fedsim"
    return base / name


@dataclass(frozen=True)
class RemoteFile:
    """One official file: its name, the URLs it is published at and its published digest.

    ``digest`` is ``"<algorithm>:<hex>"`` (``sha256`` or ``md5``, whichever the publisher gives);
    ``check`` says what it covers: the file's bytes, or (``gzip-content``) the decompressed bytes,
    for files whose compressed copies differ byte for byte.
    """

    name: str
    urls: tuple[str, ...]
    digest: str
    check: str = "bytes"

    def verify(self, data: bytes) -> bool:
        if self.check == "gzip-content":
            import gzip

            data = gzip.decompress(data)
        algorithm, expected = self.digest.split(":", 1)
        return hashlib.new(algorithm, data).hexdigest() == expected


def fetch(dataset: str, folder: Path, remote: RemoteFile) -> Path:
    """The local path of ``remote`` in ``folder``, downloading (and checking) it first if absent."""
    path = folder / remote.name
    if path.exists():
        return path
    errors = []
    for url in remote.urls:
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                data = resp.read()
        except OSError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if not remote.verify(data):
            errors.append(f"{url}: checksum mismatch")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
        return path
    why = errors[-1] if errors else "no URL"
    raise FedsimError(
        f"{dataset}: {remote.name} is not in {folder} and could not be downloaded from {remote.urls[0]} ({why}); "
        f"offline, download it there by hand (FEDSIM_DATA/{dataset}/{remote.name})"
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    # Mode bits, not os.access: a shared read-only data folder stays untouched even for root.
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IWUSR) and os.access(folder, os.W_OK)


def _cache_dir(source_folder: Path) -> Path:
    if _writable(source_folder):
        return source_folder
    root = os.environ.get("FEDSIM_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "fedsim" / "arrays") / source_folder.name


def cached_arrays(
    tag: str, sources: Sequence[Path], names: Sequence[str], build: Callable[[], dict[str, np.ndarray]], extra_key: str = ""
) -> dict[str, np.ndarray]:
    """Arrays ``names`` built by ``build()``, cached as ``.npy`` keyed by the sources' SHA-256.

    Hashing the (compressed) sources costs a few hundredths of a second; decoding and
    standardising them, most of a second. A cache file that cannot be read is rebuilt.
    ``extra_key`` folds preprocessing parameters (a split fraction, a seed) into the key.
    """
    if os.environ.get("FEDSIM_CACHE") == "off":
        return build()
    h = hashlib.sha256(extra_key.encode())
    for src in sources:
        h.update(file_sha256(src).encode())
    key = h.hexdigest()[:16]
    folder = _cache_dir(sources[0].parent)
    paths = {n: folder / f".{tag}.{key}.{n}.npy" for n in names}
    if all(p.exists() for p in paths.values()):
        try:
            # Copy-on-write maps: nothing is read until used, and callers may still write.
            return {n: np.load(p, mmap_mode="c", allow_pickle=False) for n, p in paths.items()}
        except (OSError, ValueError):
            pass  # torn or corrupt cache file: rebuild below
    arrays = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for n, p in paths.items():
            with tempfile.NamedTemporaryFile(dir=folder, suffix=".npy", delete=False) as tmp:
                np.save(tmp, arrays[n], allow_pickle=False)
            os.chmod(tmp.name, 0o644)  # NamedTemporaryFile makes 0600; the cache is shared
            os.replace(tmp.name, p)  # atomic: concurrent runs never read a half-written file
    except OSError:
        pass  # caching is an optimisation only
    return arrays
