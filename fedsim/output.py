"""The run folder: ``config.yaml``, ``metrics.jsonl``, ``summary.json``, ``curves.png``.

``metrics.jsonl`` is appended and flushed after every round, so an interrupted run keeps its
completed rounds; ``summary.json`` is written atomically (write, then rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["RunFolder", "read_metrics", "write_json_atomic"]


def write_json_atomic(path: Path, obj: Any) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(obj, tmp, indent=2)
        tmp.write("\n")
    os.replace(tmp.name, path)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunFolder:
    """Writes one run's outputs into ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, base: str | Path) -> "RunFolder":
        """Create ``base``, or ``base-2``, ``base-3``, ... if it already holds files."""
        base = Path(base)
        path, n = base, 1
        while path.exists() and any(path.iterdir()):
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def write_config(self, text: str) -> None:
        (self.path / "config.yaml").write_text(text)

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def rewrite_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace ``metrics.jsonl`` with ``rows`` atomically (resuming from a checkpoint)."""
        path = self.path / "metrics.jsonl"
        with tempfile.NamedTemporaryFile("w", dir=self.path, delete=False, suffix=".tmp") as tmp:
            tmp.writelines(json.dumps(row) + "\n" for row in rows)
        os.replace(tmp.name, path)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.path / "summary.json", summary)
