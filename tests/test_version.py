"""One version: ``fedsim._version``, read by the package, the CLI and the installed metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
import tomllib

import pytest

import fedsim
from fedsim._version import __version__
from tests.helpers import PYTHON, REPO, subprocess_env


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fedsim._version.__version__"}
    assert fedsim.__version__ == __version__


def test_installed_metadata_agrees() -> None:
    try:
        installed = importlib.metadata.version("fedsim")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fedsim is not installed (pip install -e .)")
    assert installed == __version__


def test_cli_prints_it() -> None:
    res = subprocess.run([PYTHON, "-m", "fedsim", "--version"], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"fedsim {__version__}"
