"""Every user mistake: exit code 2, one ``error:`` line on stderr (a command-line typo also gets its
usage line), no traceback, and nothing created: the folder the test runs in is unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from fedsim.checkpoint import CHECKPOINT_FILE
from fedsim.experiment import run
from tests.helpers import PYTHON, REPO, small_config, subprocess_env


def config_file(tmp: Path, text: str | None = None, **patch: object) -> Path:
    path = tmp / "exp.yaml"
    if text is None:
        cfg = small_config(tmp)
        for section, values in patch.items():
            cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
        text = yaml.safe_dump(cfg)
    path.write_text(text)
    return path


def run_folder(tmp: Path, *, checkpoint: bytes | None = None, every: int | None = None) -> Path:
    """A run folder as a stopped run leaves it: config.yaml, one metrics row, optionally checkpoint.pt bytes."""
    folder = tmp / "stopped"
    folder.mkdir()
    cfg = small_config(tmp, rounds=4)
    cfg["output"]["checkpoint_every"] = every
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "metrics.jsonl").write_text('{"round": 1}\n')
    if checkpoint is not None:
        (folder / CHECKPOINT_FILE).write_bytes(checkpoint)
    return folder


def truncated_checkpoint(tmp: Path) -> bytes:
    cfg = small_config(tmp / "src", rounds=1)
    cfg["output"]["checkpoint_every"] = 1
    data = (run(cfg).run_dir / CHECKPOINT_FILE).read_bytes()
    return data[: len(data) // 2]


def long_path(tmp: Path) -> str:
    return str(tmp.joinpath(*["d" * 250] * 20))


def existing_file(tmp: Path) -> Path:
    path = tmp / "afile.txt"
    path.write_text("x")
    return path


def no_flower(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """flwr's scripts are neither next to the interpreter nor on PATH: the state of a base install."""
    monkeypatch.setattr(sys, "executable", str(tmp / "nowhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp / "nowhere"))


Case = Callable[[Path, pytest.MonkeyPatch], list[str]]
# (id, argv builder, substrings of the error line, usage line expected)
CASES: list[tuple[str, Case, list[str], bool]] = [
    # command-line typos
    ("unknown command", lambda t, m: ["bogus"], ["bogus"], True),
    ("unknown option", lambda t, m: ["run", str(config_file(t)), "--bogus"], ["--bogus"], True),
    ("no command", lambda t, m: [], ["missing command", "run"], True),
    ("no subcommand", lambda t, m: ["topology"], ["missing command", "show"], True),
    ("missing option", lambda t, m: ["topology", "show", "ring"], ["--nodes"], True),
    ("bad option value", lambda t, m: ["topology", "show", "ring", "--nodes", "many"], ["--nodes"], True),
    # the config file
    ("missing config", lambda t, m: ["run", str(t / "nope.yaml")], ["nope.yaml", "no such file"], False),
    ("folder as config", lambda t, m: ["run", str(t)], ["is a folder"], False),
    ("binary config", lambda t, m: ["run", str(_binary(t))], ["not a text file"], False),
    ("empty config", lambda t, m: ["run", str(config_file(t, ""))], ["empty config"], False),
    ("comments-only config", lambda t, m: ["run", str(config_file(t, "# nothing\n"))], ["empty config"], False),
    ("empty mapping config", lambda t, m: ["run", str(config_file(t, "{}\n"))], ["empty config"], False),
    ("duplicate key", lambda t, m: ["run", str(config_file(t, "seed: 0\nalgorithm: {kind: fedavg}\nseed: 1\n"))],
     ["exp.yaml:3", "duplicate key 'seed'", "line 1"], False),
    ("nested duplicate key", lambda t, m: ["validate", str(config_file(t, "algorithm:\n  lr: 0.1\n  lr: 0.2\n"))],
     ["exp.yaml:3", "duplicate key 'lr'"], False),
    ("YAML syntax", lambda t, m: ["run", str(config_file(t, "algorithm: {kind: fedavg, lr: [0.1\n"))], ["YAML syntax error"], False),
    ("list as config", lambda t, m: ["run", str(config_file(t, "- 1\n- 2\n"))], ["expected a mapping"], False),
    ("inf in file", lambda t, m: ["run", str(config_file(t, algorithm={"lr": float("inf")}))], ["algorithm.lr", "finite"], False),
    ("nan in file", lambda t, m: ["run", str(config_file(t, data={"partition": {"kind": "dirichlet", "alpha": float("nan")}}))],
     ["data.partition.alpha", "finite"], False),
    ("inf override", lambda t, m: ["run", str(config_file(t)), "--set", "algorithm.lr=inf"], ["algorithm.lr", "finite"], False),
    ("nan override", lambda t, m: ["validate", str(config_file(t)), "--set", "algorithm.weight_decay=nan"],
     ["algorithm.weight_decay", "finite"], False),
    ("-inf override", lambda t, m: ["run", str(config_file(t)), "--set", "evaluation.client_holdout=-.inf"],
     ["evaluation.client_holdout"], False),
    ("--set without =", lambda t, m: ["run", str(config_file(t)), "--set", "algorithm.lr"], ["section.key=value"], False),
    ("--set empty key", lambda t, m: ["run", str(config_file(t)), "--set", "=3"], ["section.key=value"], False),
    ("--set empty part", lambda t, m: ["run", str(config_file(t)), "--set", "algorithm..lr=3"], ["section.key=value"], False),
    ("--set unknown key", lambda t, m: ["run", str(config_file(t)), "--set", "algorithm.lrr=0.1"], ["algorithm.lrr", "did you mean 'lr'"], False),
    ("--set unknown kind", lambda t, m: ["run", str(config_file(t)), "--set", "data.partition.kind=zipf"], ["data.partition.kind", "zipf"], False),
    # --out
    ("--out under /proc", lambda t, m: ["run", str(config_file(t)), "--out", "/proc/fedsim-run"], ["/proc", "kernel"], False),
    ("--out under /sys", lambda t, m: ["run", str(config_file(t)), "--out", "/sys/fedsim-run"], ["/sys", "kernel"], False),
    ("--out below a file", lambda t, m: ["run", str(config_file(t)), "--out", str(existing_file(t) / "run")], ["is a file"], False),
    ("--out is a file", lambda t, m: ["run", str(config_file(t)), "--out", str(existing_file(t))], ["not a folder"], False),
    ("--out empty", lambda t, m: ["run", str(config_file(t)), "--out", ""], ["--out", "empty path"], False),
    ("--out name too long", lambda t, m: ["run", str(config_file(t)), "--out", str(t / ("r" * 300))], ["300 bytes", "allows 255"], False),
    ("--out path too long", lambda t, m: ["run", str(config_file(t)), "--out", long_path(t)], ["path is", "allows"], False),
    ("output.dir is a file", lambda t, m: ["run", str(config_file(t, output={"dir": str(existing_file(t))}))], ["output.dir", "not a folder"], False),
    # fedsim plot -o
    ("plot -o under /proc", lambda t, m: ["plot", str(t), "-o", "/proc/curves.png"], ["-o", "/proc"], False),
    ("plot -o below a file", lambda t, m: ["plot", str(t), "-o", str(existing_file(t) / "c.png")], ["-o", "is a file"], False),
    ("plot -o unknown type", lambda t, m: ["plot", str(t), "-o", str(t / "curves.xyz")], [".xyz", "png"], False),
    ("plot -o no extension", lambda t, m: ["plot", str(t), "-o", str(t / "curves")], ["no extension"], False),
    ("plot no run folder", lambda t, m: ["plot", str(t / "nope"), "-o", str(t / "c.png")], ["no such run folder"], False),
    # fedsim topology show --plot
    ("topology --plot under /proc", lambda t, m: ["topology", "show", "ring", "-n", "8", "--plot", "/proc/ring.png"], ["--plot", "cannot write"], False),
    ("topology --plot below a file", lambda t, m: ["topology", "show", "ring", "-n", "8", "--plot", str(existing_file(t) / "r.png")],
     ["--plot", "is a file"], False),
    ("topology --plot unknown type", lambda t, m: ["topology", "show", "ring", "-n", "8", "--plot", str(t / "ring.xyz")], [".xyz"], False),
    # a path a command did not check itself: the entry point's file-system fallback
    ("sweep --out under /proc", lambda t, m: ["sweep", str(config_file(t)), "--grid", "algorithm.lr=0.1", "--out", "/proc/sweep"],
     ["/proc/sweep"], False),
    # --resume
    ("resume missing folder", lambda t, m: ["run", "--resume", str(t / "nope")], ["no such run folder"], False),
    ("resume not a run folder", lambda t, m: ["run", "--resume", str(t)], ["not a run folder"], False),
    ("resume before first checkpoint", lambda t, m: ["run", "--resume", str(run_folder(t, every=3))],
     ["no checkpoint written yet: the run stopped before round 3"], False),
    ("resume never checkpointed", lambda t, m: ["run", "--resume", str(run_folder(t))], ["checkpoint_every"], False),
    ("resume random checkpoint", lambda t, m: ["run", "--resume", str(run_folder(t, checkpoint=os.urandom(4096), every=1))],
     ["checkpoint.pt", "not a fedsim checkpoint"], False),
    ("resume truncated checkpoint", lambda t, m: ["run", "--resume", str(run_folder(t, checkpoint=truncated_checkpoint(t), every=1))],
     ["checkpoint.pt", "truncated"], False),
    ("resume with --set", lambda t, m: ["run", "--resume", str(t), "--set", "seed=1"], ["--resume"], False),
    # fedsim flower
    ("flower deploy without flwr", lambda t, m: (no_flower(m, t), ["flower", "deploy", str(config_file(t))])[1], ["flwr is not installed"], False),
    ("flower deploy 0 supernodes", lambda t, m: ["flower", "deploy", str(config_file(t)), "-n", "0"], ["--supernodes"], False),
    ("flower deploy --out a file", lambda t, m: ["flower", "deploy", str(config_file(t)), "--out", str(existing_file(t))], ["not a folder"], False),
]


def _binary(tmp: Path) -> Path:
    path = tmp / "exp.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81" * 16)
    return path


def _tree(root: Path) -> dict[str, int]:
    """Every path below ``root`` with its size (files) or -1 (folders)."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


@pytest.mark.parametrize("build, needles, usage", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_mistake_is_one_line(tmp_path, cli, monkeypatch, build, needles, usage):
    argv = build(tmp_path, monkeypatch)
    before = _tree(tmp_path)
    code, _, err = cli(*argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == (2 if usage else 1), err
    if usage:
        assert lines[0].startswith("Usage: fedsim")
    assert lines[-1].startswith("error: ")
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    assert _tree(tmp_path) == before, "a user mistake created or changed files"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [["bogus"], [], ["run", "x.yaml", "--bogus"]], ids=["bogus", "bare", "option"])
def test_real_entry_point_typos(tmp_path, argv):
    """The installed entry point, not only the in-process one: typer's own exception types are caught."""
    proc = subprocess.run([PYTHON, "-m", "fedsim", *argv], capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Usage: fedsim") and lines[1].startswith("error: "), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_click_import():
    """fedsim imports click nowhere: typer >= 0.22 no longer depends on it."""
    offenders = [p for p in (REPO / "fedsim").rglob("*.py") if any(
        line.strip().startswith(("import click", "from click")) for line in p.read_text().splitlines())]
    assert offenders == []


def test_checkpoint_loads_without_unpickling_code(tmp_path):
    """A real checkpoint passes ``weights_only`` loading: resuming never runs pickled code from a file."""
    cfg = small_config(tmp_path, rounds=1)
    cfg["output"]["checkpoint_every"] = 1
    path = run(cfg).run_dir / CHECKPOINT_FILE
    assert isinstance(torch.load(path, weights_only=True), dict)
