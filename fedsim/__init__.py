"""fedsim: a federated and decentralized learning simulator.

The Python API mirrors the CLI::

    import fedsim
    result = fedsim.run("configs/quickstart.yaml", overrides=["algorithm.rounds=5"])
    result.final_accuracy, result.history, result.run_dir

Config models live in :mod:`fedsim.config`, partitioners in :mod:`fedsim.data`, models in
:mod:`fedsim.models`; ``fedsim.run(..., model=my_module, partition=my_index_lists)`` accepts your own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fedsim._version import __version__

__all__ = ["ExperimentConfig", "RunResult", "__version__", "load_config", "run"]

if TYPE_CHECKING:
    from fedsim.config import ExperimentConfig, load_config
    from fedsim.experiment import RunResult
    from fedsim.tracking import run


def __getattr__(name: str) -> Any:
    # torch and friends load on first use, so `fedsim --version` and error paths stay fast.
    if name == "run":  # the experiment runner with the config's output.trackers attached
        from fedsim import tracking

        return tracking.run
    if name == "RunResult":
        from fedsim import experiment

        return experiment.RunResult
    if name in ("ExperimentConfig", "load_config"):
        from fedsim import config

        return getattr(config, name)
    raise AttributeError(f"module 'fedsim' has no attribute {name!r}")
