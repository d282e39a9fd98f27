"""Runtimes: where client work executes. Algorithms hand a cohort to a runtime and get results
back in client-id order; they never know which runtime it is."""

from fedsim.runtimes.base import CohortResult, Runtime, resolve_device
from fedsim.runtimes.serial import SerialRuntime
from fedsim.runtimes.vectorized import VectorizedRuntime

__all__ = ["CohortResult", "Runtime", "SerialRuntime", "VectorizedRuntime", "resolve_device"]
