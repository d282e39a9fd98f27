"""Tests of ``fedsim.runtimes``."""
