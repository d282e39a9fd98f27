"""Tests of ``fedsim.deploy``."""
