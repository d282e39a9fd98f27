"""The run folder: ``config.yaml``, ``metrics.jsonl``, ``summary.json``, ``curves.png``.

``metrics.jsonl`` is appended and flushed after every round, so an interrupted run keeps its
completed rounds; ``summary.json`` is written atomically (write, then rename). Every JSON file
is strict JSON: a non-finite float (a diverged loss) is written as ``null``, never as the bare
``NaN``/``Infinity`` tokens that strict parsers reject. Every file gets mode 0644.

:func:`check_run_dir` and :func:`check_output_file` refuse a destination that cannot be written
(under /proc or /sys, below a file, a name too long, ...) before anything is created.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from fedsim.errors import FedsimError

__all__ = [
    "FILE_MODE",
    "RunFolder",
    "check_output_file",
    "check_run_dir",
    "finite_or_none",
    "read_metrics",
    "strict_dumps",
    "write_json_atomic",
]

FILE_MODE = 0o644
# Kernel views, not storage: writing a run there fails half-way or does something else entirely.
_VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (nested in dicts, lists, tuples) replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def strict_dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes non-finite floats as ``null`` (strict JSON, RFC 8259)."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


def _replace_into(tmp: str, path: Path) -> None:
    os.chmod(tmp, FILE_MODE)  # mkstemp files are 0600; the run folder's files are all 0644
    os.replace(tmp, path)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as strict JSON to ``path`` (temporary file, then rename)."""
    text = strict_dumps(obj, indent=2) + "\n"
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    _replace_into(tmp.name, path)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- destination checks


def _limits(existing: Path) -> tuple[int, int]:
    """(longest file name, longest path) in bytes on the file system holding ``existing``."""
    try:
        return os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def _check_destination(raw: str | os.PathLike[str], what: str, *, folder: bool) -> Path:
    text = os.fspath(raw)
    if not text.strip():
        raise FedsimError(f"{what}: empty path (give a {'folder' if folder else 'file name'})")
    if "\0" in text:
        raise FedsimError(f"{what} {text!r}: contains a NUL byte")
    path = Path(os.path.abspath(os.path.expanduser(text)))
    real = Path(os.path.realpath(path))
    for root in _VIRTUAL_ROOTS:
        if real == root or root in real.parents:
            raise FedsimError(f"{what} {text}: {root} is a kernel file system, not storage (choose a folder on disk)")
    existing = _nearest_existing(path)
    name_max, path_max = _limits(existing if existing.is_dir() else existing.parent)
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise FedsimError(f"{what}: the name {part[:40]}... is {len(os.fsencode(part))} bytes long (the file system allows {name_max})")
    if len(os.fsencode(str(path))) >= path_max:
        raise FedsimError(f"{what}: the path is {len(os.fsencode(str(path)))} bytes long (the file system allows {path_max - 1})")
    if existing == path:
        if folder and not path.is_dir():
            raise FedsimError(f"{what} {text}: exists and is not a folder")
        if not folder and path.is_dir():
            raise FedsimError(f"{what} {text}: is a folder (give a file name)")
        parent = path if folder else path.parent
    else:
        if not existing.is_dir():
            raise FedsimError(f"{what} {text}: {existing} is a file, so nothing can be created below it")
        parent = existing
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FedsimError(f"{what} {text}: {parent} is not writable")
    return path


def check_run_dir(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Refuse, with a one-line :class:`FedsimError`, a ``path`` that cannot become a run folder."""
    return _check_destination(path, what, folder=True)


def check_output_file(path: str | os.PathLike[str], what: str = "-o") -> Path:
    """Refuse, with a one-line :class:`FedsimError`, a file ``path`` that cannot be written."""
    return _check_destination(path, what, folder=False)


class RunFolder:
    """Writes one run's outputs into ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def target(base: str | Path, what: str = "output.dir") -> Path:
        """The folder :meth:`create` would use: ``base``, or ``base-2``, ``base-3``, ... if it holds files."""
        base = check_run_dir(base, what)
        path, n = base, 1
        while path.is_dir() and any(path.iterdir()):
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return check_run_dir(path, what) if n > 1 else path

    @classmethod
    def create(cls, base: str | Path, what: str = "output.dir") -> "RunFolder":
        """Create ``base``, or ``base-2``, ``base-3``, ... if it already holds files."""
        path = cls.target(base, what)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FedsimError(f"{what} {base}: cannot create {path} ({exc.strerror or exc})") from None
        return cls(path)

    def write_config(self, text: str) -> None:
        path = self.path / "config.yaml"
        path.write_text(text)
        os.chmod(path, FILE_MODE)

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)  # whatever the umask: every run file has the same mode
            fh.write(strict_dumps(row) + "\n")

    def rewrite_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace ``metrics.jsonl`` with ``rows`` atomically (resuming from a checkpoint)."""
        with tempfile.NamedTemporaryFile("w", dir=self.path, delete=False, suffix=".tmp") as tmp:
            tmp.writelines(strict_dumps(row) + "\n" for row in rows)
        _replace_into(tmp.name, self.path / "metrics.jsonl")

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.path / "summary.json", summary)
