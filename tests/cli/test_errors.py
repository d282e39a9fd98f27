"""Every bad input gets one line on stderr naming the key or file, exit code 2, and no run folder."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import PYTHON, REPO, small_config, subprocess_env


def write(tmp_path: Path, cfg: dict | str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return path


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    "mutate, needles",
    [
        (lambda c: c["algorithm"].update(lrr=0.1), ["algorithm.lrr", "did you mean 'lr'"]),
        (lambda c: c["data"].update(num_clientz=3), ["data.num_clientz", "num_clients"]),
        (lambda c: c["algorithm"].update(lr="fast"), ["algorithm.lr", "fast"]),
        (lambda c: c["algorithm"].update(lr=0), ["algorithm.lr", "greater than 0"]),
        (lambda c: c["algorithm"].update(lr=-0.1), ["algorithm.lr"]),
        (lambda c: c["data"]["partition"].update(alpha=0), ["data.partition.alpha", "greater than 0"]),
        (lambda c: c["algorithm"].update(clients_per_round=51), ["algorithm.clients_per_round", "1..50"]),
        (lambda c: c["algorithm"].update(kind="fedfoo"), ["algorithm.kind", "fedfoo", "fedavg"]),
        (lambda c: c["model"].update(kind="vgg"), ["model.kind", "vgg", "mlp"]),
        (lambda c: c.update(sed=1), ["sed", "did you mean 'seed'"]),
    ],
)
def test_bad_config_values(tmp_path, cli, mutate, needles):
    cfg = small_config(tmp_path)
    mutate(cfg)
    code, _, err = cli("run", str(write(tmp_path, cfg)))
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path, cli):
    code, _, err = cli("run", str(tmp_path / "nope.yaml"))
    assert_one_line_error(code, err, "nope.yaml", "no such file")


def test_yaml_syntax_error_names_file_and_line(tmp_path, cli):
    path = write(tmp_path, "seed: 0\nalgorithm: {kind: fedavg, lr: [0.1\n")
    code, _, err = cli("run", str(path))
    assert_one_line_error(code, err, "exp.yaml:", "YAML syntax error")


def test_bad_override(tmp_path, cli):
    path = write(tmp_path, small_config(tmp_path))
    code, _, err = cli("run", str(path), "--set", "algorithm.lr")
    assert_one_line_error(code, err, "--set algorithm.lr", "section.key=value")
    code, _, err = cli("run", str(path), "--set", "algorithm.rounds=-1")
    assert_one_line_error(code, err, "algorithm.rounds")


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A writable copy of the MNIST folder, used as FEDSIM_DATA."""
    import dataclasses
    import os

    from fedsim.data import mnist

    src = Path(os.environ["FEDSIM_DATA"]) / "mnist"
    dst = tmp_path / "data" / "mnist"
    shutil.copytree(src, dst)
    monkeypatch.setenv("FEDSIM_DATA", str(dst.parent))
    spec = mnist.IDX_SETS["mnist"]  # a closed port: offline, instantly
    monkeypatch.setitem(mnist.IDX_SETS, "mnist", dataclasses.replace(spec, mirrors=("http://127.0.0.1:9/",)))
    mnist._standardised.cache_clear()
    yield dst
    mnist._standardised.cache_clear()


def test_corrupt_data_file(tmp_path, cli, data_copy):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 1
    path.write_bytes(gzip.compress(bytes(raw)))
    code, _, err = cli("run", str(write(tmp_path, small_config(tmp_path))))
    assert_one_line_error(code, err, "t10k-labels-idx1-ubyte.gz", "SHA-256")
    assert not (tmp_path / "run").exists()


def test_missing_data_file_offline(tmp_path, cli, data_copy):
    (data_copy / "train-images-idx3-ubyte.gz").unlink()
    code, _, err = cli("run", str(write(tmp_path, small_config(tmp_path))))
    assert_one_line_error(code, err, "train-images-idx3-ubyte.gz", str(data_copy), "FEDSIM_DATA")
    assert not (tmp_path / "run").exists()


def test_validate_and_version(tmp_path, cli):
    code, out, err = cli("validate", str(write(tmp_path, small_config(tmp_path))))
    assert code == 0 and "valid" in err and "fedavg" in out
    code, out, _ = cli("--version")
    assert code == 0 and out.strip().startswith("fedsim ")


def test_real_entry_point_error_has_no_traceback(tmp_path):
    cfg = small_config(tmp_path)
    cfg["algorithm"]["lrr"] = 1
    proc = subprocess.run(
        [PYTHON, "-m", "fedsim", "run", str(write(tmp_path, cfg))], capture_output=True, text=True, env=subprocess_env(), cwd=REPO
    )
    assert_one_line_error(proc.returncode, proc.stderr, "algorithm.lrr")
