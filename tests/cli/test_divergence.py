"""A diverging run stops at the round its loss or parameters stop being finite, says so in one
stderr line with a hint, exits 3, and every JSON file it wrote passes a strict parser."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
import yaml

from fedsim.output import finite_or_none, strict_dumps
from tests.helpers import small_config


def strict_load(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def strict_files(run_dir: Path) -> dict[str, list[object]]:
    """Every JSON and JSON-lines file in ``run_dir``, parsed strictly."""
    parsed = {}
    for path in sorted(run_dir.rglob("*.json*")):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        parsed[path.name] = [strict_load(line) for line in lines if line.strip()]
    return parsed


def test_diverging_run(tmp_path, cli):
    cfg = small_config(tmp_path, rounds=3, lr=1e6)
    cfg["model"] = {"kind": "mlp", "hidden": [16]}  # a logistic model's loss grows but stays finite
    cfg["output"].update(plot=True, checkpoint_every=1)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    old_umask = os.umask(0o077)  # a private umask: run files still all get 0644
    try:
        code, _, err = cli("run", str(path), "--quiet")
    finally:
        os.umask(old_umask)
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("diverged: ") and "algorithm.lr" in lines[0] and "1e+06" in lines[0]

    files = strict_files(tmp_path / "run")
    assert set(files) == {"metrics.jsonl", "summary.json"}
    rows = files["metrics.jsonl"]
    (summary,) = files["summary.json"]
    assert summary["status"] == "diverged"
    div = summary["divergence"]
    assert div["quantity"] in {"train_loss", "parameters", "test_loss"} and div["quantity"] in lines[0]
    # Stopped at that round: the diverged round is the last row written, before the planned 3.
    assert [r["round"] for r in rows] == list(range(1, div["round"] + 1)) and div["round"] < 3
    assert summary["rounds"] == div["round"]
    last = rows[-1]
    if div["quantity"] == "train_loss":
        assert last["train_loss"] is None
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for r in rows for v in r.values())
    assert (tmp_path / "run" / "curves.png").is_file()
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in (tmp_path / "run").iterdir()}
    assert set(modes.values()) == {"0o644"}, modes


def test_finite_run_is_still_completed(tmp_path, cli):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(small_config(tmp_path)))
    code, _, err = cli("run", str(path), "--quiet")
    assert code == 0, err
    (summary,) = strict_files(tmp_path / "run")["summary.json"]
    assert summary["status"] == "completed" and "divergence" not in summary


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_strict_dumps_writes_null(value):
    obj = {"a": value, "b": [1.0, value, {"c": (value, 2)}], "d": "nan"}
    assert strict_load(strict_dumps(obj)) == {"a": None, "b": [1.0, None, {"c": [None, 2]}], "d": "nan"}
    assert finite_or_none(value) is None
