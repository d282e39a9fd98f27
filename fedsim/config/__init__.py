"""Experiment configuration: pydantic models (unknown keys rejected), YAML loading, ``--set`` overrides."""

from fedsim.config.loading import apply_overrides, config_sha256, dump_config, load_config, validate_config
from fedsim.config.schema import ExperimentConfig

__all__ = ["ExperimentConfig", "apply_overrides", "config_sha256", "dump_config", "load_config", "validate_config"]
