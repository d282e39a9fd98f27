"""Tests of ``fedsim.topology``."""
