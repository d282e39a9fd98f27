"""Reading the CSV traces of :mod:`fedsim.systems` (device profiles, availability)."""

from __future__ import annotations

import csv
from pathlib import Path

from fedsim.errors import FedsimError

__all__ = ["read_trace"]


def read_trace(path: str | Path, columns: tuple[str, ...], where: str) -> list[dict[str, str]]:
    """The rows of the CSV at ``path``, which must have a header with at least ``columns``.

    An unreadable file, an empty one or a missing column is a one-line error naming ``where``
    (the config key) and the file.
    """
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FedsimError(f"{where}: cannot read {path}: {exc}") from None
    if not rows or not set(columns) <= set(rows[0]):
        raise FedsimError(f"{where}: {path} needs a header with the columns {','.join(columns)} and at least one row")
    return rows
