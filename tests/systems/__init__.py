"""Tests of ``fedsim.systems``."""
