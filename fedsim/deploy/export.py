"""``fedsim flower export``: write a Flower App that runs a fedsim experiment.

The app is a ``pyproject.toml`` with ``[tool.flwr.app]`` components and run config, the
resolved experiment as ``fedsim_app/experiment.yaml`` (YAML files travel in the Flower App
Bundle), and two three-line modules that hand over to :mod:`fedsim.deploy.apps`. Every
process that runs it needs fedsim installed (``pip install 'fedsim[flower]'``); the
SuperLink must not install dependencies at run time (``--disable-runtime-dependency-installation``).
"""

from __future__ import annotations

import json
from pathlib import Path

from fedsim._version import __version__
from fedsim.config.loading import dump_config
from fedsim.config.schema import ExperimentConfig
from fedsim.errors import FedsimError

__all__ = ["APP_PACKAGE", "export_app"]

APP_PACKAGE = "fedsim_app"

_PYPROJECT = """\
# A Flower App written by `fedsim flower export` (fedsim {version}).
# Run it on a SuperLink started with --disable-runtime-dependency-installation, with fedsim
# installed on every node and each SuperNode started with
#   --node-config "partition-id=P num-partitions=N"
# (SuperNode P hosts the experiment's clients c with c % N == P).
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fedsim-app"
version = "1.0.0"
description = "fedsim experiment {algorithm} on {dataset} as a Flower App"
license = "Apache-2.0"
dependencies = ["fedsim[flower]=={version}"]

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "fedsim"

[tool.flwr.app.components]
serverapp = "{package}.server_app:app"
clientapp = "{package}.client_app:app"

[tool.flwr.app.config]
# Where the ServerApp writes metrics.jsonl, summary.json and curves.png (on the SuperLink host).
run-dir = {run_dir}
# SuperNodes to wait for (up to flower.node_wait_s) before the first round.
expected-nodes = {expected_nodes}
"""

_MODULE = '''\
"""Flower {kind} for the fedsim experiment in experiment.yaml (written by `fedsim flower export`)."""

from pathlib import Path

from fedsim.deploy.apps import make_{kind_lower}_app

app = make_{kind_lower}_app(Path(__file__).with_name("experiment.yaml"))
'''


def export_app(cfg: ExperimentConfig, out: Path, *, run_dir: Path | None = None, expected_nodes: int = 1) -> Path:
    """Write the Flower App for ``cfg`` into ``out`` and return ``out``.

    ``run_dir`` defaults to ``output.dir`` of the config, made absolute here because the
    ServerApp runs in another working directory.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FedsimError(f"-o {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / APP_PACKAGE).is_dir():
        raise FedsimError(f"-o {out}: directory is not empty and holds no exported fedsim app; choose an empty one")
    package = out / APP_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    run_dir = Path(run_dir if run_dir is not None else cfg.output.dir).resolve()
    (out / "pyproject.toml").write_text(
        _PYPROJECT.format(
            version=__version__,
            algorithm=cfg.algorithm.kind,
            dataset=cfg.data.dataset,
            package=APP_PACKAGE,
            run_dir=json.dumps(str(run_dir)),  # a JSON string is a valid TOML basic string
            expected_nodes=expected_nodes,
        )
    )
    (package / "__init__.py").write_text('"""A fedsim experiment as a Flower App."""\n')
    for kind in ("ServerApp", "ClientApp"):
        lower = kind[: -len("App")].lower()
        (package / f"{lower}_app.py").write_text(_MODULE.format(kind=kind, kind_lower=lower))
    (package / "experiment.yaml").write_text(dump_config(cfg))
    return out
