"""Runtimes: where client work executes. Algorithms hand a cohort to a runtime and get results
back in client-id order; they never know which runtime it is."""

from fedsim.runtimes.base import CohortResult, Runtime, resolve_device
from fedsim.runtimes.serial import SerialRuntime

__all__ = ["CohortResult", "Runtime", "SerialRuntime", "resolve_device"]
